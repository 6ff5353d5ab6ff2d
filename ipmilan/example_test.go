package ipmilan_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// exampleBMC serves a simulated BMC on loopback for the examples.
func exampleBMC() (addr string, stop func()) {
	b := bmcsim.New(bmcsim.Config{Users: []bmcsim.User{{Name: "admin", Password: "secret"}}})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go b.Serve(ctx, pc)
	return pc.LocalAddr().String(), func() { cancel(); pc.Close() }
}

func ExampleDial() {
	addr, stop := exampleBMC()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := ipmilan.Dial(ctx, ipmilan.Config{Addr: addr, User: "admin", Password: ipmilan.Secret("secret")})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	if err := s.ChassisControl(ctx, ipmilan.PowerOn); err != nil {
		log.Fatal(err)
	}
	st, err := s.ChassisStatus(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("cipher suite:", s.CipherSuite())
	fmt.Println("power on:", st.PowerOn())
	// Output:
	// cipher suite: 17
	// power on: true
}

func ExampleDial_wrongPassword() {
	addr, stop := exampleBMC()
	defer stop()

	_, err := ipmilan.Dial(context.Background(), ipmilan.Config{Addr: addr, User: "admin", Password: ipmilan.Secret("guess")})
	fmt.Println(errors.Is(err, ipmilan.ErrAuth))
	// Output: true
}

func ExamplePing() {
	addr, stop := exampleBMC()
	defer stop()

	ipmi, err := ipmilan.Ping(context.Background(), addr, time.Second)
	fmt.Println(ipmi, err)
	// Output: true <nil>
}
