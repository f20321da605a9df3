package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/swarmsync/swarmsync/schema"
)

// ConfigDigest is the value of the swarmsync:config tag for an instance of
// group ("managers" or "workers/<name>") of cluster c: the sha256 (hex) of
// every input that shapes the machine — provider and its region or subnet,
// the group's role, image, type, subnets, security groups, instance
// profile, key pair and the user-data template. Counts, labels and
// availability are left out: they change nodes, not machines. The order of
// subnets and security groups does not matter. It returns "" for a group
// the spec does not declare.
func ConfigDigest(c schema.Cluster, group string) string {
	var inst schema.Instance
	role := "worker"
	switch {
	case group == schema.ManagersGroup:
		inst, role = c.Managers.Instance, "manager"
	default:
		g, ok := workerGroup(c, group)
		if !ok {
			return ""
		}
		inst = g.Instance
	}
	subnets := slices.Clone(inst.Subnets)
	slices.Sort(subnets)
	sgs := slices.Clone(inst.SecurityGroups)
	slices.Sort(sgs)
	b, err := json.Marshal(struct {
		V        int             `json:"v"`
		Provider schema.Provider `json:"provider"`
		Role     string          `json:"role"`
		Type     string          `json:"type"`
		Image    string          `json:"image"`
		Subnets  []string        `json:"subnets"`
		SGs      []string        `json:"sgs"`
		Profile  string          `json:"profile"`
		Key      string          `json:"key"`
		UserData string          `json:"user_data"`
	}{1, c.Provider, role, inst.Type, inst.Image, subnets, sgs, inst.InstanceProfile, inst.KeyName, c.UserData})
	if err != nil {
		panic("failed to encode config digest: " + err.Error()) // plain strings only
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
