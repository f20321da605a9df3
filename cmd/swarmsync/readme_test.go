package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeFirstScreen keeps the README's promise: its "Try it" block has
// exactly two set-up commands, the quickstart apply and the test command,
// and CI runs that same test command.
func TestReadmeFirstScreen(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)## Try it\n.*?```sh\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("README has no ```sh block under ## Try it")
	}
	var cmds []string
	for _, line := range strings.Split(strings.TrimSpace(string(block[1])), "\n") {
		if cmd, _, _ := strings.Cut(line, "#"); strings.TrimSpace(cmd) != "" {
			cmds = append(cmds, strings.Join(strings.Fields(cmd), " "))
		}
	}
	want := []string{"go run ./cmd/swarmsync apply --yes --repo fixtures/quickstart", ".ci/test"}
	if strings.Join(cmds, "\n") != strings.Join(want, "\n") {
		t.Errorf("README's set-up commands are %q; want exactly %q", cmds, want)
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^exec \.ci/test$`).Match(ci) {
		t.Error(".ci/run does not end by running the README's test command (exec .ci/test)")
	}
	test, err := os.ReadFile("../../.ci/test")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".ci/install", "SWARMSYNC_REQUIRE_LAB=1", "go test -timeout 30m"} {
		if !strings.Contains(string(test), want) {
			t.Errorf(".ci/test does not contain %q", want)
		}
	}
}
