package schema

import (
	"fmt"
	"strings"
)

// The YAML parser reports a syntax error with a line only, and often not
// the line of the mistake (the start of the enclosing block, or the line
// after). yamlLocate finds the real place of the common mistakes in the
// text itself and says what is wrong there; where it finds nothing it
// keeps the parser's line.

// yamlLine is one line of a YAML file.
type yamlLine struct {
	n       int    // 1-based
	indent  int    // leading spaces
	content string // the line without its indentation and comment
	blank   bool   // empty or a comment only
	literal bool   // inside a block scalar (| or >): text, not structure
}

// yamlMark is a place in the text and what is wrong there.
type yamlMark struct {
	line, col int
	what      string
}

func yamlLines(data []byte) []yamlLine {
	var out []yamlLine
	blockAt := -1 // indentation of the key of an open block scalar
	for i, raw := range strings.Split(string(data), "\n") {
		raw = strings.TrimRight(raw, "\r")
		l := yamlLine{n: i + 1}
		trimmed := strings.TrimLeft(raw, " ")
		l.indent = len(raw) - len(trimmed)
		l.content = stripComment(trimmed)
		l.blank = strings.TrimSpace(l.content) == ""
		if blockAt >= 0 && (l.blank || l.indent > blockAt) {
			l.literal = true
			out = append(out, l)
			continue
		}
		blockAt = -1
		if c := strings.TrimSpace(l.content); !l.blank && (strings.HasSuffix(c, "|") || strings.HasSuffix(c, ">") ||
			strings.HasSuffix(c, "|-") || strings.HasSuffix(c, ">-") || strings.HasSuffix(c, "|+") || strings.HasSuffix(c, ">+")) {
			blockAt = l.indent
		}
		out = append(out, l)
	}
	return out
}

// stripComment drops a comment (# at the start or after a space, outside
// quotes).
func stripComment(s string) string {
	var quote rune
	prev := ' '
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case (r == '"' || r == '\'') && strings.ContainsRune(" :-[{,", prev):
			quote = r
		case r == '#' && prev == ' ':
			return s[:i]
		}
		prev = r
	}
	return s
}

// yamlLocate returns the place of the syntax error the parser reported at
// line with msg, when the text shows where it is.
func yamlLocate(data []byte, line int, msg string) (yamlMark, bool) {
	lines := yamlLines(data)
	switch {
	case strings.Contains(msg, "did not find expected ',' or") || strings.Contains(msg, "end of stream") || strings.Contains(msg, "expected node content"):
		if m, ok := unclosed(lines); ok {
			return m, true
		}
	case strings.Contains(msg, "mapping values are not allowed"):
		if l, ok := lineAt(lines, line); ok {
			key, rest, _ := strings.Cut(l.content, ":")
			if i := strings.Index(rest, ": "); i >= 0 && !strings.HasPrefix(strings.TrimSpace(rest), "{") {
				return yamlMark{l.n, l.indent + len(key) + 2 + leadingSpaces(rest), "a value that holds \": \" must be quoted"}, true
			}
			if m, ok := noColon(lines, l.n-1); ok {
				return m, true
			}
			if p, ok := previous(lines, l.n); ok && l.indent > p.indent && !strings.HasSuffix(strings.TrimSpace(p.content), ":") {
				return yamlMark{l.n, l.indent + 1, fmt.Sprintf("this line is indented more than line %d, whose key already has a value: align the two, or move the value of line %d below it", p.n, p.n)}, true
			}
		}
	case strings.Contains(msg, "did not find expected key") || strings.Contains(msg, "could not find expected ':'"):
		if m, ok := noColon(lines, line); ok && strings.Contains(msg, "':'") {
			return m, true
		}
		if m, ok := badIndent(lines); ok {
			return m, true
		}
		if m, ok := noColon(lines, line+1); ok {
			return m, true
		}
	case strings.Contains(msg, "cannot start any token"):
		for _, l := range lines {
			if l.n < line-1 || l.n > line+1 {
				continue
			}
			raw := strings.Split(string(data), "\n")[l.n-1]
			if i := strings.IndexRune(raw, '\t'); i >= 0 {
				return yamlMark{l.n, i + 1, "a tab: YAML is indented with spaces only"}, true
			}
		}
	case strings.Contains(msg, "block sequence entries are not allowed"):
		if l, ok := lineAt(lines, line); ok {
			if i := strings.Index(l.content, ": - "); i >= 0 {
				return yamlMark{l.n, l.indent + i + 3, "a list starts on the lines below its key (or write it [a, b])"}, true
			}
		}
	}
	return yamlMark{}, false
}

func leadingSpaces(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

func lineAt(lines []yamlLine, n int) (yamlLine, bool) {
	if n < 1 || n > len(lines) || lines[n-1].blank || lines[n-1].literal {
		return yamlLine{}, false
	}
	return lines[n-1], true
}

// previous is the structural line before line n.
func previous(lines []yamlLine, n int) (yamlLine, bool) {
	for i := n - 2; i >= 0; i-- {
		if !lines[i].blank && !lines[i].literal {
			return lines[i], true
		}
	}
	return yamlLine{}, false
}

// unclosed finds a flow collection ({ or [) or a quoted string that is
// never closed: still open at the end of the text, or when a later line
// goes back to its line's indentation (block structure resumes).
func unclosed(lines []yamlLine) (yamlMark, bool) {
	type open struct {
		line, col, indent int
		r                 rune
	}
	var stack []open
	var quote *open
	for _, l := range lines {
		if l.literal || (l.blank && quote == nil) {
			continue
		}
		if len(stack) > 0 && quote == nil && l.indent <= stack[0].indent {
			o := stack[len(stack)-1]
			return yamlMark{o.line, o.col, fmt.Sprintf("this %q is never closed: end it with %q", string(o.r), string(closer(o.r)))}, true
		}
		prev := ' '
		for i, r := range l.content {
			col := l.indent + i + 1
			switch {
			case quote != nil:
				if r == quote.r && !(r == '"' && prev == '\\') {
					quote = nil
				}
			case (r == '"' || r == '\'') && strings.ContainsRune(" :-[{,", prev):
				quote = &open{l.n, col, l.indent, r}
			case r == '{' || r == '[':
				stack = append(stack, open{l.n, col, l.indent, r})
			case (r == '}' || r == ']') && len(stack) > 0:
				stack = stack[:len(stack)-1]
			}
			prev = r
		}
	}
	if quote != nil {
		return yamlMark{quote.line, quote.col, fmt.Sprintf("this quoted string is never closed: end it with %s", string(quote.r))}, true
	}
	if len(stack) > 0 {
		o := stack[len(stack)-1]
		return yamlMark{o.line, o.col, fmt.Sprintf("this %q is never closed: end it with %q", string(o.r), string(closer(o.r)))}, true
	}
	return yamlMark{}, false
}

func closer(r rune) rune {
	if r == '{' {
		return '}'
	}
	return ']'
}

// badIndent finds the first line whose indentation matches none of the
// blocks that enclose it.
func badIndent(lines []yamlLine) (yamlMark, bool) {
	levels := []int{0}
	opens := false // the previous line opens a block (ends with ':' or is a "- ")
	for _, l := range lines {
		if l.blank || l.literal {
			continue
		}
		top := levels[len(levels)-1]
		switch {
		case l.indent > top && opens:
			levels = append(levels, l.indent)
		case l.indent > top:
			// deeper than a key that has a value: the parser says so itself
		default:
			around := joinInts(levels)
			for len(levels) > 1 && levels[len(levels)-1] > l.indent {
				levels = levels[:len(levels)-1]
			}
			if levels[len(levels)-1] != l.indent {
				return yamlMark{l.n, l.indent + 1, fmt.Sprintf("this line is indented by %s, a level no block above it has (they are indented by %s)", spaces(l.indent), around)}, true
			}
		}
		c := strings.TrimSpace(l.content)
		opens = strings.HasSuffix(c, ":") || strings.HasPrefix(c, "- ") || c == "-"
	}
	return yamlMark{}, false
}

// noColon finds, at or before line n, a line in a block mapping that has
// no "key:".
func noColon(lines []yamlLine, n int) (yamlMark, bool) {
	for i := min(n, len(lines)) - 1; i >= 0 && i >= n-3; i-- {
		l := lines[i]
		c := strings.TrimSpace(l.content)
		if l.blank || l.literal || strings.HasPrefix(c, "-") || strings.ContainsAny(c[:1], "{[\"'") {
			continue
		}
		if !strings.Contains(c, ":") {
			return yamlMark{l.n, l.indent + 1, "a key needs \": \" between it and its value"}, true
		}
	}
	return yamlMark{}, false
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, " or ")
}

func spaces(n int) string {
	if n == 1 {
		return "1 space"
	}
	return fmt.Sprintf("%d spaces", n)
}
