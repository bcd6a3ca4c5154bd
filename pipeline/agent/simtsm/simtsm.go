// Package simtsm is a configfs-tsm for tests that produces real TDX quotes: go-configfs-tsm's
// fake report subsystem (configfs/faketsm) whose outblob is a quote of a booted TDX
// simulator VM (pipeline/tdx/tdxsim) over the written inblob, signed by the simulator's
// authority, so that the quotes verify against its root. Like the kernel's, it reports the
// provider "tdx_guest" and refuses an inblob longer than 64 bytes.
package simtsm

import (
	"crypto/rand"
	"fmt"
	"os"
	"syscall"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"

	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// New returns a configfs-tsm client whose reports are quotes of v. fail, when non-nil, is
// consulted before every quote: a non-nil error fails the outblob read, as a kernel whose
// quote generation failed.
func New(v *tdxsim.VM, fail func() error) configfsi.Client {
	sub := &faketsm.ReportSubsystem{
		MakeEntry: func() *faketsm.ReportEntry {
			return &faketsm.ReportEntry{InAttrs: map[string]*faketsm.ReportAttributeState{
				"privlevel": {Value: []byte("0\n")},
				"inblob":    {},
			}}
		},
		CheckInAttr: func(_ *faketsm.ReportEntry, attr string, contents []byte) error {
			switch attr {
			case "inblob":
				if len(contents) > 64 {
					return syscall.EINVAL
				}
				return nil
			case "privlevel":
				return nil
			}
			return fmt.Errorf("unwritable attribute: %q", attr)
		},
		ReadAttr: func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
			switch attr {
			case "provider":
				return []byte("tdx_guest\n"), nil
			case "outblob":
				in, ok := e.InAttrs["inblob"]
				if !ok || len(in.Value) == 0 {
					return nil, syscall.EINVAL
				}
				if fail != nil {
					if err := fail(); err != nil {
						return nil, err
					}
				}
				var rd [64]byte // the kernel zero-pads a shorter inblob
				copy(rd[:], in.Value)
				return v.Quote(rd)
			case "privlevel_floor":
				return []byte("0\n"), nil
			}
			return nil, os.ErrNotExist
		},
		Random: rand.Reader,
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}
