package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// Names of kernel objects are derived, never chosen by hand, so that two
// clusters (or two state directories, e.g. two test packages running at the
// same time) never share a bridge, a namespace or a veth. Linux limits
// interface names to 15 bytes.

// bridgeName is "ssb-" + 10 hex digits of sha256(stateDir, cluster).
func bridgeName(stateDir, cluster string) string {
	sum := sha256.Sum256([]byte(stateDir + "\x00" + cluster))
	return "ssb-" + hex.EncodeToString(sum[:5])
}

// netnsName is the namespace of an instance: "ss-" + its id.
func netnsName(id string) string { return "ss-" + id }

// vethName is the host side of an instance's veth pair: "ssv" + 12 hex digits.
func vethName(id string) string { return "ssv" + strings.TrimPrefix(id, "l-") }

// run executes a host command and returns its combined output in the error.
func run(ctx context.Context, name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("failed to run %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// subnetPlan is the parsed /24-ish subnet of a cluster.
type subnetPlan struct {
	prefix  netip.Prefix
	gateway netip.Addr
}

func parseSubnet(s string) (subnetPlan, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return subnetPlan{}, fmt.Errorf("invalid local subnet %q: want an IPv4 CIDR such as 10.231.0.0/24", s)
	}
	p = p.Masked()
	if p.Bits() > 29 || p.Bits() < 16 {
		return subnetPlan{}, fmt.Errorf("invalid local subnet %q: prefix length must be between /16 and /29", s)
	}
	if !p.Addr().IsPrivate() {
		return subnetPlan{}, fmt.Errorf("invalid local subnet %q: must be a private range (10/8, 172.16/12, 192.168/16)", s)
	}
	return subnetPlan{prefix: p, gateway: p.Addr().Next()}, nil
}

// nextIP returns the lowest address after the gateway that is not in used.
func (sp subnetPlan) nextIP(used map[string]bool) (netip.Addr, error) {
	for a := sp.gateway.Next(); sp.prefix.Contains(a); a = a.Next() {
		if !sp.prefix.Contains(a.Next()) { // broadcast
			break
		}
		if !used[a.String()] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address left in subnet %s", sp.prefix)
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

func netnsExists(name string) bool {
	_, err := os.Stat("/var/run/netns/" + name)
	return err == nil
}

// forwardRules are the iptables rules of a cluster bridge. The first lets
// traffic between the bridge's ports through when a FORWARD policy of DROP
// is in force (Docker sets one). The second keeps the machines off every
// other network whatever the host's policy: local machines talk to each
// other (and to the host on the gateway address), never beyond.
func forwardRules(bridge string) [][]string {
	return [][]string{
		{"FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"},
		{"FORWARD", "-i", bridge, "!", "-o", bridge, "-j", "DROP"},
	}
}

func ruleExists(ctx context.Context, rule []string) bool {
	return run(ctx, "iptables", append([]string{"-w", "-C"}, rule...)...) == nil
}

// ensureBridge creates the cluster bridge with the gateway address and the
// FORWARD rule, unless they exist.
func ensureBridge(ctx context.Context, n network) error {
	sp, err := parseSubnet(n.Subnet)
	if err != nil {
		return err
	}
	if !linkExists(n.Bridge) {
		// Two interfaces on one subnet make the host's route to the
		// machines go to whichever came first: the machines would run,
		// unreachable from the host.
		if other := SubnetUser(sp.prefix); other != "" {
			return fmt.Errorf("subnet %s is already used by network interface %s (another local cluster, or one left behind): "+
				"destroy that cluster, delete the interface, or give this one another provider.local.subnet", sp.prefix, other)
		}
		if err := run(ctx, "ip", "link", "add", n.Bridge, "type", "bridge"); err != nil {
			return fmt.Errorf("failed to create bridge: %w", err)
		}
		addr := fmt.Sprintf("%s/%d", sp.gateway, sp.prefix.Bits())
		if err := run(ctx, "ip", "addr", "add", addr, "dev", n.Bridge); err != nil {
			return fmt.Errorf("failed to address bridge: %w", err)
		}
	}
	if err := run(ctx, "ip", "link", "set", n.Bridge, "up"); err != nil {
		return fmt.Errorf("failed to bring up bridge: %w", err)
	}
	for _, rule := range forwardRules(n.Bridge) {
		if ruleExists(ctx, rule) {
			continue
		}
		if err := run(ctx, "iptables", append([]string{"-w", "-I"}, rule...)...); err != nil {
			return fmt.Errorf("failed to set the forwarding rules of the bridge: %w", err)
		}
	}
	return nil
}

// SubnetUser names a network interface with an address in prefix, or "".
func SubnetUser(prefix netip.Prefix) string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && prefix.Contains(ip.Unmap()) {
				return ifc.Name
			}
		}
	}
	return ""
}

// removeBridge deletes the FORWARD rule and the bridge.
func removeBridge(ctx context.Context, bridge string) error {
	var errs []error
	for _, rule := range forwardRules(bridge) {
		for ruleExists(ctx, rule) {
			if err := run(ctx, "iptables", append([]string{"-w", "-D"}, rule...)...); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	if linkExists(bridge) {
		if err := run(ctx, "ip", "link", "del", bridge); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("failed to remove bridge %s: %w", bridge, err)
	}
	return nil
}

// plugInstance creates the instance's namespace and veth pair, addresses it
// and routes it via the bridge.
func plugInstance(ctx context.Context, r record, n network) error {
	sp, err := parseSubnet(n.Subnet)
	if err != nil {
		return err
	}
	peer := "ssp" + strings.TrimPrefix(r.ID, "l-")
	steps := [][]string{
		{"ip", "netns", "add", r.Netns},
		{"ip", "link", "add", r.VethHost, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", peer, "netns", r.Netns},
		{"ip", "link", "set", r.VethHost, "master", n.Bridge},
		{"ip", "link", "set", r.VethHost, "up"},
		{"ip", "-n", r.Netns, "link", "set", peer, "name", "eth0"},
		{"ip", "-n", r.Netns, "addr", "add", fmt.Sprintf("%s/%d", r.PrivateIP, sp.prefix.Bits()), "dev", "eth0"},
		{"ip", "-n", r.Netns, "link", "set", "eth0", "up"},
		{"ip", "-n", r.Netns, "link", "set", "lo", "up"},
		{"ip", "-n", r.Netns, "route", "add", "default", "via", sp.gateway.String()},
	}
	for _, s := range steps {
		if err := run(ctx, s[0], s[1:]...); err != nil {
			return fmt.Errorf("failed to plug instance %s into %s: %w", r.ID, n.Bridge, err)
		}
	}
	return nil
}

// unplugInstance removes the namespace and the veth pair (idempotent).
func unplugInstance(ctx context.Context, r record) error {
	var errs []error
	if r.VethHost != "" && linkExists(r.VethHost) {
		if err := run(ctx, "ip", "link", "del", r.VethHost); err != nil {
			errs = append(errs, err)
		}
	}
	if r.Netns != "" && netnsExists(r.Netns) {
		if err := run(ctx, "ip", "netns", "del", r.Netns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("failed to unplug instance %s: %w", r.ID, err)
	}
	return nil
}

// NetnsName returns the network namespace name of instance id (for leak checks).
func NetnsName(id string) string { return netnsName(id) }

// VethName returns the host-side veth name of instance id (for leak checks).
func VethName(id string) string { return vethName(id) }
