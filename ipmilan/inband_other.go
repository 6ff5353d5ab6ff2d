//go:build !(linux && (amd64 || arm64 || 386 || arm || riscv64 || s390x || loong64))

package ipmilan

import "fmt"

func openDriver(path string) (ipmiDriver, error) {
	return nil, fmt.Errorf("ipmilan: %s: %w: the in-band interface needs the Linux IPMI driver", path, ErrUnsupported)
}
