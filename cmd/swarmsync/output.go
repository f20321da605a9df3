package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/swarmsync/swarmsync/schema"
)

// The printing rule. Spec labels, node hostnames, instance ids, file names
// and servers' answers are input, and input is hostile: a raw ESC, CR or LF
// in one could recolour a terminal or forge a line of a plan. So everything
// the CLI prints as text leaves through a safeWriter, which shows every
// control character (C0 but newline and tab, DEL, C1), every bidirectional
// formatting character and every byte that is not UTF-8 escaped as Go
// writes it in a quoted string (\x1b, \r, \u0085, \u202e, \xff). Newline and
// tab pass the writer, since views lay out text with them; inside a field
// they are escaped too (escapeField, escapeFields). JSON output is written
// exact (its encoder escapes what JSON must), through exact(w).

// safeWriter writes what it is given under the printing rule. A rune split
// across two writes is held until the next write completes it.
type safeWriter struct {
	w    io.Writer
	hold []byte
}

func newSafeWriter(w io.Writer) *safeWriter { return &safeWriter{w: w} }

// Write writes p escaped; it reports len(p) when everything was written.
func (s *safeWriter) Write(p []byte) (int, error) {
	in := p
	if len(s.hold) > 0 {
		in = append(s.hold, p...)
		s.hold = nil
	}
	// Hold back an incomplete rune at the end (at most 3 bytes).
	if cut := incompleteTail(in); cut < len(in) {
		s.hold = append([]byte(nil), in[cut:]...)
		in = in[:cut]
	}
	if _, err := io.WriteString(s.w, escape(string(in), false)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// incompleteTail is where an incomplete UTF-8 sequence at the end of b
// starts (len(b) when there is none).
func incompleteTail(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		c := b[i]
		if c < 0x80 {
			return len(b)
		}
		if c >= 0xC0 { // a leading byte
			need := 2
			switch {
			case c >= 0xF0:
				need = 4
			case c >= 0xE0:
				need = 3
			}
			if len(b)-i < need && !utf8.FullRune(b[i:]) {
				return i
			}
			return len(b)
		}
	}
	return len(b)
}

// exact is the writer under w's printing rule, for output that is exact by
// its own encoding (JSON) or that the view itself made safe.
func exact(w io.Writer) io.Writer {
	if s, ok := w.(*safeWriter); ok {
		return s.w
	}
	return w
}

// terminalFile is the file behind w, when w writes to one.
func terminalFile(w io.Writer) (*os.File, bool) {
	f, ok := exact(w).(*os.File)
	return f, ok
}

// escapeField is s with every character the printing rule escapes, newline
// and tab included: one field of a line stays on its line.
func escapeField(s string) string { return escape(s, true) }

// escape applies the printing rule; field also escapes newline and tab.
func escape(s string, field bool) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if mustEscape(r, n, field) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case mustEscape(r, n, field):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func mustEscape(r rune, n int, field bool) bool {
	switch {
	case r == utf8.RuneError && n == 1:
		return true
	case r == '\n' || r == '\t':
		return field
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true // bidirectional formatting: reorders what a line shows
	}
	return false
}

// escapeFields escapes (escapeField) every string reachable from v, a
// pointer: struct fields, slice elements, map keys and values. Views call
// it on the data they render before laying it out.
func escapeFields(v any) {
	escapeValue(reflect.ValueOf(v))
}

func escapeValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			escapeValue(v.Elem())
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(escapeField(v.String()))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				escapeValue(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			escapeValue(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() || !v.CanSet() {
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), v.Len())
		it := v.MapRange()
		for it.Next() {
			k := reflect.New(v.Type().Key()).Elem()
			k.Set(it.Key())
			escapeValue(k)
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(it.Value())
			escapeValue(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	}
}

// renderError prints the error that ends a command, escaped: a list of
// diagnostics or of joined errors one per line, anything else on one line.
func renderError(w io.Writer, err error) {
	lines := errorLines(err)
	fmt.Fprintf(w, "Error: %s\n", escapeField(lines[0]))
	for _, l := range lines[1:] {
		fmt.Fprintf(w, "%s\n", escapeField(l))
	}
}

func errorLines(err error) []string {
	var ds schema.Diagnostics
	if errors.As(err, &ds) && len(ds) > 0 && err.Error() == ds.Error() {
		lines := make([]string, len(ds))
		for i, d := range ds {
			lines[i] = d.String()
		}
		return lines
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
		var lines []string
		for _, e := range j.Unwrap() {
			lines = append(lines, errorLines(e)...)
		}
		return lines
	}
	return []string{err.Error()}
}
