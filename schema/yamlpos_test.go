package schema

import (
	"strings"
	"testing"
)

// TestYAMLSyntaxPositions: the common YAML mistakes are reported where they
// are (line:col), with what is wrong there, though the parser names only a
// line and often another one.
func TestYAMLSyntaxPositions(t *testing.T) {
	const head = "name: demo\nprovider:\n  local: {subnet: 10.231.0.0/24}\nmanagers:\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"deeper than a key with a value", head + "  count: 3\n   instance: {}\n",
			"c.yaml:6:4: YAML syntax error: mapping values are not allowed in this context; this line is indented more than line 5"},
		{"flow map never closed", "name: demo\nprovider:\n  local: {subnet: 10.231.0.0/24\nmanagers:\n  count: 3\n",
			`c.yaml:3:10: YAML syntax error: did not find expected ',' or '}'; this "{" is never closed: end it with "}"`},
		{"flow list never closed", head + "  count: 3\n  labels: [a, b\nworkers: {}\n",
			`c.yaml:6:11: YAML syntax error: did not find expected ',' or ']'; this "[" is never closed`},
		{"quote never closed", head + "  count: \"3\nworkers: {}\n",
			"c.yaml:5:10: YAML syntax error: found unexpected end of stream; this quoted string is never closed"},
		{"list item in a map", head + "  count: 3\n - x\n",
			"c.yaml:6:2: YAML syntax error: did not find expected key; this line is indented by 1 space, a level no block above it has (they are indented by 0 or 2)"},
		{"shallower than its siblings", head + "    count: 3\n  labels: {}\n",
			"c.yaml:6:3: YAML syntax error: did not find expected key; this line is indented by 2 spaces"},
		{"tab", head + "\tcount: 3\n",
			"c.yaml:5:1: YAML syntax error: found character that cannot start any token; a tab: YAML is indented with spaces only"},
		{"key without colon", head + "  count 3\n  labels: {}\n",
			`c.yaml:5:3: YAML syntax error: mapping values are not allowed in this context; a key needs ": " between it and its value`},
		{"colon in a plain value", head + "  count: 3\n  labels: tier: web\n",
			`c.yaml:6:11: YAML syntax error: mapping values are not allowed in this context; a value that holds ": " must be quoted`},
		{"list on the key's line", "name: demo\nprovider:\n  local: {subnet: 10.231.0.0/24}\nmanagers: - 3\n",
			"c.yaml:4:11: YAML syntax error: block sequence entries are not allowed in this context; a list starts on the lines below its key"},
		{"block scalar text is not structure", head + "  count: 3\nuserData: |\n  #!/bin/sh\n     echo {\n  echo '\nworkers: [\n",
			`c.yaml:10:10: YAML syntax error: did not find expected node content; this "[" is never closed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]File{{Name: "c.yaml", Data: []byte(tc.yaml)}})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got  %v\nwant %s...", err, tc.want)
			}
		})
	}
}

// FuzzYAMLLocate: any text, line and message: no panic, and a mark names a
// line of the text.
func FuzzYAMLLocate(f *testing.F) {
	for _, m := range []string{"did not find expected ',' or '}'", "found unexpected end of stream", "mapping values are not allowed in this context",
		"did not find expected key", "could not find expected ':'", "found character that cannot start any token", "block sequence entries are not allowed in this context"} {
		f.Add([]byte("a:\n  b: {c: \"d\n - e\n\tf: g: h\ni: - j\n"), 3, m)
	}
	f.Fuzz(func(t *testing.T, data []byte, line int, msg string) {
		m, ok := yamlLocate(data, line, msg)
		if ok && (m.line < 1 || m.line > strings.Count(string(data), "\n")+1 || m.col < 1) {
			t.Fatalf("mark %+v outside the text", m)
		}
	})
}
