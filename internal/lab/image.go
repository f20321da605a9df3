package lab

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// Image is the tiny task image imported on every lab node.
const Image = "lab/busybox"

// BusyboxPath is where Debian's busybox-static puts its binary.
const BusyboxPath = "/usr/bin/busybox"

var (
	imageOnce sync.Once
	imageTar  []byte
	imageErr  error
)

// busyboxTar builds (once) a root filesystem tarball with the static busybox
// binary and a few applet symlinks.
func busyboxTar() ([]byte, error) {
	imageOnce.Do(func() {
		bin, err := os.ReadFile(BusyboxPath)
		if err != nil {
			imageErr = fmt.Errorf("failed to read %s (install busybox-static): %w", BusyboxPath, err)
			return
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		hdrs := []*tar.Header{
			{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))},
		}
		for _, applet := range []string{"sh", "sleep", "true", "echo", "cat", "ls", "hostname"} {
			hdrs = append(hdrs, &tar.Header{Name: "bin/" + applet, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
		}
		for _, h := range hdrs {
			if err := tw.WriteHeader(h); err != nil {
				imageErr = err
				return
			}
			if h.Name == "bin/busybox" {
				if _, err := tw.Write(bin); err != nil {
					imageErr = err
					return
				}
			}
		}
		if err := tw.Close(); err != nil {
			imageErr = err
			return
		}
		imageTar = buf.Bytes()
	})
	return imageTar, imageErr
}

// importImage imports lab/busybox into the engine at endpoint.
func importImage(ctx context.Context, endpoint string) error {
	tarball, err := busyboxTar()
	if err != nil {
		return err
	}
	cli, err := client.NewClientWithOpts(client.WithHost(endpoint), client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("failed to connect to %s: %w", endpoint, err)
	}
	defer cli.Close()
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(tarball), SourceName: "-"}, Image,
		image.ImportOptions{Changes: []string{"ENV PATH=/bin", `CMD ["sh"]`}})
	if err != nil {
		return fmt.Errorf("failed to import %s on %s: %w", Image, endpoint, err)
	}
	defer rc.Close()
	out, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("failed to import %s on %s: %w", Image, endpoint, err)
	}
	if strings.Contains(string(out), `"errorDetail"`) {
		return fmt.Errorf("failed to import %s on %s: %s", Image, endpoint, out)
	}
	return nil
}
