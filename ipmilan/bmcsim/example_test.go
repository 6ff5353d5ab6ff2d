package bmcsim_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// A fleet of simulated BMCs on random loopback ports, as tests use it;
// point any IPMI client at f.Addr(i) with user admin.
func ExampleStartFleet() {
	f, err := bmcsim.StartFleet(context.Background(), bmcsim.FleetConfig{
		N:      3,
		Listen: "127.0.0.1:0",
		Config: bmcsim.Config{
			Users:        []bmcsim.User{{Name: "admin", Password: "secret"}},
			CipherSuites: []uint8{3, 17},
		},
		Configure: func(i int, c *bmcsim.Config) { c.PowerOn = i == 0 },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	for i := range f.Len() {
		fmt.Println(strings.HasPrefix(f.Addr(i), "127.0.0.1:"), f.BMC(i).Power())
	}
	f.BMC(2).SetFaults(bmcsim.Faults{Freeze: true}) // BMC 2 now answers nothing
	// Output:
	// true true
	// true false
	// true false
}
