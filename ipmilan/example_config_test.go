package ipmilan_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/solgate/solgate/ipmilan"
)

// The configuration commands take any Commander: here a LAN session; an
// *ipmilan.Inband from ipmilan.OpenInband works the same on the node.
func ExampleReadSOLConfig() {
	addr, stop := exampleBMC()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := ipmilan.Dial(ctx, ipmilan.Config{Addr: addr, User: "admin", Password: ipmilan.Secret("secret")})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	var c ipmilan.Commander = s
	ch, err := ipmilan.FindLANChannel(ctx, c)
	if err != nil {
		log.Fatal(err)
	}
	if err := ipmilan.SetSOLBitRate(ctx, c, ch, true, ipmilan.BitRate57600); err != nil {
		log.Fatal(err)
	}
	sol, err := ipmilan.ReadSOLConfig(ctx, c, ch)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("channel", ch, "enabled", sol.Enabled, "bit rate", sol.VBitRate, "privilege", sol.Auth.Priv)

	// A parameter the BMC lacks is an error callers can branch on.
	_, err = ipmilan.GetLANParam(ctx, c, ch, ipmilan.LANParam(8))
	fmt.Println("not supported:", ipmilan.IsNotSupported(err))
	// Output:
	// channel 1 enabled true bit rate 57600 privilege user
	// not supported: true
}
