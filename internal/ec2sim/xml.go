package ec2sim

import (
	"encoding/xml"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

const xmlns = "http://ec2.amazonaws.com/doc/" + APIVersion + "/"

// xw builds an XML document by hand, in the exact shape EC2 uses.
type xw struct{ strings.Builder }

func (w *xw) open(name string)  { w.WriteString("<" + name + ">") }
func (w *xw) close(name string) { w.WriteString("</" + name + ">") }

// text writes <name>value</name>, escaped.
func (w *xw) text(name, value string) {
	w.open(name)
	_ = xml.EscapeText(w, []byte(value))
	w.close(name)
}

func (w *xw) int(name string, v int) { w.text(name, strconv.Itoa(v)) }

func (w *xw) tagSet(tags map[string]string) {
	if len(tags) == 0 {
		w.WriteString("<tagSet/>")
		return
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.open("tagSet")
	for _, k := range keys {
		w.open("item")
		w.text("key", k)
		w.text("value", tags[k])
		w.close("item")
	}
	w.close("tagSet")
}

func (w *xw) state(name, st string) {
	w.open(name)
	w.int("code", stateCodes[st])
	w.text("name", st)
	w.close(name)
}

// instance writes one instancesSet item.
func (w *xw) instance(in *instance, st string) {
	w.open("item")
	w.text("instanceId", in.id)
	w.text("imageId", in.imageID)
	w.state("instanceState", st)
	if in.privateIP != "" {
		w.text("privateDnsName", "ip-"+strings.ReplaceAll(in.privateIP, ".", "-")+".ec2.internal")
		w.text("privateIpAddress", in.privateIP)
	}
	if in.keyName != "" {
		w.text("keyName", in.keyName)
	}
	w.int("amiLaunchIndex", in.launchIndex)
	w.text("instanceType", in.instanceType)
	w.text("launchTime", in.launchedAt.UTC().Format("2006-01-02T15:04:05.000Z"))
	w.open("placement")
	w.text("availabilityZone", in.subnet.Zone)
	w.text("tenancy", "default")
	w.close("placement")
	w.text("subnetId", in.subnet.ID)
	w.text("vpcId", "vpc-0a00000000000000a")
	w.open("groupSet")
	for _, g := range in.securityGroups {
		w.open("item")
		w.text("groupId", g)
		w.close("item")
	}
	w.close("groupSet")
	if in.profile != "" {
		w.open("iamInstanceProfile")
		w.text("arn", "arn:aws:iam::123456789012:instance-profile/"+in.profile)
		w.close("iamInstanceProfile")
	}
	if in.clientToken != "" {
		w.text("clientToken", in.clientToken)
	}
	switch {
	case in.bootFailed:
		w.open("stateReason")
		w.text("code", "Server.InternalError")
		w.text("message", "Server.InternalError: Internal error on launch")
		w.close("stateReason")
	case !in.terminatedAt.IsZero():
		w.open("stateReason")
		w.text("code", "Client.UserInitiatedShutdown")
		w.text("message", "Client.UserInitiatedShutdown: User initiated shutdown")
		w.close("stateReason")
	}
	w.tagSet(in.tags)
	w.close("item")
}

func writeResponse(w http.ResponseWriter, action, reqID, body string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<` + action + `Response xmlns="` + xmlns + `">`)
	b.WriteString("<requestId>" + reqID + "</requestId>")
	b.WriteString(body)
	b.WriteString(`</` + action + `Response>`)
	_, _ = w.Write([]byte(b.String()))
}

func writeError(w http.ResponseWriter, reqID string, e *APIError) {
	var b xw
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.open("Response")
	b.open("Errors")
	b.open("Error")
	b.text("Code", e.Code)
	b.text("Message", e.Message)
	b.close("Error")
	b.close("Errors")
	b.text("RequestID", reqID)
	b.close("Response")
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(b.String()))
}
