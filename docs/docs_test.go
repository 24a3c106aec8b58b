// Package docs_test keeps the reference under docs/ honest where it drifts
// most easily: the edge's configuration fields and the flags of edge, origin
// and loadgen. A field or flag that exists and is not documented fails, and
// so does one the docs name that does not exist; each failure names the
// field or flag and the file it is missing from.
package docs_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
)

// root is the module root, one level up from docs/.
const root = ".."

// ---- configuration fields ----

// configPaths walks config.Config by its yaml tags. all holds every path
// (sections too, e.g. "health" and "rate_limits[].match"); leaves holds the
// fields that carry a value and must each be documented.
func configPaths() (all, leaves map[string]bool) { return yamlPaths(reflect.TypeFor[config.Config]()) }

// yamlPaths walks a struct type by its yaml tags (see configPaths).
func yamlPaths(root reflect.Type) (all, leaves map[string]bool) {
	all, leaves = map[string]bool{}, map[string]bool{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "-" || !f.IsExported() || f.Type.Kind() == reflect.Func {
				continue
			}
			if tag == "" {
				tag = strings.ToLower(f.Name)
			}
			path := tag
			if prefix != "" {
				path = prefix + "." + tag
			}
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]():
				all[path] = true
				walk(ft, path)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				all[path] = true
				all[path+"[]"] = true
				walk(ft.Elem(), path+"[]")
			default:
				all[path] = true
				leaves[path] = true
			}
		}
	}
	walk(root, "")
	return all, leaves
}

// mdTable is one Markdown table: its header cells and its rows' cells.
type mdTable struct {
	line   int // line of the header, 1-based
	header []string
	rows   [][]string
	lines  []int
}

// section is the text under one heading, up to the next heading of the same
// or a higher level (fenced code is skipped when finding headings).
type section struct {
	file, heading string
	start         int // line of the heading, 1-based
	lines         []string
	level         int
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

var headingRE = regexp.MustCompile(`^(#{1,6}) (.*)$`)

// sections splits a Markdown file by its headings.
func sections(t *testing.T, file string) []section {
	t.Helper()
	lines := readLines(t, filepath.Join(root, file))
	var out []section
	fenced := false
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
		}
		if fenced {
			continue
		}
		if m := headingRE.FindStringSubmatch(l); m != nil {
			out = append(out, section{file: file, heading: m[2], start: i + 1, level: len(m[1])})
		}
	}
	for i := range out {
		end := len(lines)
		for _, next := range out[i+1:] {
			if next.level <= out[i].level {
				end = next.start - 1
				break
			}
		}
		out[i].lines = lines[out[i].start:end]
	}
	return out
}

// findSection returns the section whose heading contains want.
func findSection(t *testing.T, file, want string) (section, bool) {
	t.Helper()
	for _, s := range sections(t, file) {
		if strings.Contains(s.heading, want) {
			return s, true
		}
	}
	return section{}, false
}

// tables parses the Markdown tables of a section.
func (s section) tables() []mdTable {
	var out []mdTable
	var cur *mdTable
	for i, l := range s.lines {
		lineNo := s.start + 1 + i
		if !strings.HasPrefix(l, "|") {
			cur = nil
			continue
		}
		cells := splitRow(l)
		if cur == nil {
			out = append(out, mdTable{line: lineNo, header: cells})
			cur = &out[len(out)-1]
			continue
		}
		if strings.Trim(l, "|-: ") == "" {
			continue // the separator row
		}
		cur.rows = append(cur.rows, cells)
		cur.lines = append(cur.lines, lineNo)
	}
	return out
}

// splitRow splits a table row into cells, honouring \| and pipes in code spans.
func splitRow(l string) []string {
	l = strings.TrimSpace(l)
	l = strings.TrimPrefix(l, "|")
	l = strings.TrimSuffix(l, "|")
	var cells []string
	var b strings.Builder
	code := false
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c == '\\' && i+1 < len(l) && l[i+1] == '|':
			b.WriteByte('|')
			i++
		case c == '`':
			code = !code
			b.WriteByte(c)
		case c == '|' && !code:
			cells = append(cells, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(cells, strings.TrimSpace(b.String()))
}

var codeSpanRE = regexp.MustCompile("`([^`]+)`")

func codeSpans(s string) []string {
	var out []string
	for _, m := range codeSpanRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

const configDoc = "docs/configuration.md"

// TestConfigFieldsDocumented: every field of proxy/config.Config, by its YAML
// path, has a row in the field table of docs/configuration.md, and every path
// that table names exists.
func TestConfigFieldsDocumented(t *testing.T) {
	all, leaves := configPaths()
	if len(leaves) < 50 {
		t.Fatalf("walked only %d config fields; the walk is broken", len(leaves))
	}
	sec, ok := findSection(t, configDoc, "The file")
	if !ok {
		t.Fatalf("%s: no section headed %q holding the field table", configDoc, "The file")
	}
	documented := map[string]bool{}
	for _, tbl := range sec.tables() {
		if len(tbl.header) == 0 || tbl.header[0] != "field" {
			continue
		}
		for i, row := range tbl.rows {
			names := codeSpans(row[0])
			if len(names) == 0 {
				t.Errorf("%s:%d: a field row without a `field.path` in its first cell", configDoc, tbl.lines[i])
			}
			for _, n := range names {
				documented[n] = true
				if !all[n] {
					t.Errorf("%s:%d: documents config field %q, which proxy/config.Config does not have", configDoc, tbl.lines[i], n)
				}
			}
		}
	}
	var missing []string
	for p := range leaves {
		if !documented[p] {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	for _, p := range missing {
		t.Errorf("config field %q (proxy/config.Config) is not documented in the field table of %s", p, configDoc)
	}
}

// TestCacheConfigDocumented: docs/cache.md's table of cache.Config (the
// library's own YAML names) lists every field and only fields that exist.
func TestCacheConfigDocumented(t *testing.T) {
	const file = "docs/cache.md"
	_, leaves := yamlPaths(reflect.TypeFor[cache.Config]())
	sec, ok := findSection(t, file, "`cache.Config`")
	if !ok {
		t.Fatalf("%s: no section headed with `cache.Config` holding its field table", file)
	}
	documented := map[string]bool{}
	for _, tbl := range sec.tables() {
		if len(tbl.header) == 0 || tbl.header[0] != "field" {
			continue
		}
		for i, row := range tbl.rows {
			for _, n := range codeSpans(row[0]) {
				documented[n] = true
				if !leaves[n] {
					t.Errorf("%s:%d: documents cache.Config field %q, which proxy/cache.Config does not have", file, tbl.lines[i], n)
				}
			}
		}
	}
	for _, p := range sortedKeys(leaves) {
		if !documented[p] {
			t.Errorf("cache.Config field %q (proxy/cache) is not documented in the `cache.Config` table of %s", p, file)
		}
	}
}

// TestConfigFieldsNamedInDocsExist: wherever the README or a page under docs/
// names an edge config field by its path (`health.interval`,
// `rate_limits[].per_ip.rate`), the field exists.
func TestConfigFieldsNamedInDocsExist(t *testing.T) {
	all, _ := configPaths()
	var tops []string
	for p := range all {
		if top, rest, ok := strings.Cut(p, "."); ok && rest != "" {
			tops = append(tops, regexp.QuoteMeta(strings.TrimSuffix(top, "[]")))
		}
	}
	slices.Sort(tops)
	tops = slices.Compact(tops)
	fieldRE := regexp.MustCompile(`^(?:` + strings.Join(tops, "|") + `)(?:\[\])?(?:\.[a-z0-9_]+(?:\[\])?)+$`)
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "README.md"))
	checked := 0
	for _, path := range files {
		rel, _ := filepath.Rel(root, path)
		for i, l := range readLines(t, path) {
			for _, span := range codeSpans(l) {
				// `cache.max_entry_bytes: 4194304` style spans name the field before the colon.
				name, _, _ := strings.Cut(span, ":")
				if !fieldRE.MatchString(name) {
					continue
				}
				checked++
				if !all[name] {
					t.Errorf("%s:%d: names config field %q, which proxy/config.Config does not have", rel, i+1, name)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no config field names in the docs; the pattern is broken")
	}
}

// ---- flags ----

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds edge, origin and loadgen once, under a deadline of their
// own: a cold build cache on a loaded 2-core machine takes minutes, and no
// --help deadline below includes it.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "novashop-docs-test-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/edge", "./cmd/origin", "./cmd/loadgen")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// help runs a built binary with args (ending in --help) and returns stdout.
// The deadline covers only the run: the build happened in binaries.
func help(t *testing.T, prog string, args ...string) string {
	t.Helper()
	bin := filepath.Join(binaries(t), prog)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v", prog, strings.Join(args, " "), err)
	}
	return string(out)
}

var (
	// flag.PrintDefaults: "  -name type".
	defaultsFlagRE = regexp.MustCompile(`(?m)^  -([a-z0-9][a-z0-9-]*)`)
	// the edge's hand-written usage: "  --name ARG   ...".
	edgeFlagRE = regexp.MustCompile(`(?m)^\s+--([a-z0-9][a-z0-9-]*)`)
	// an environment variable in brackets in a flag's usage.
	bracketEnvRE = regexp.MustCompile(`\[([A-Z][A-Z0-9_]*)[],]`)
	// an environment variable anywhere: NAME_WITH_UNDERSCORES, or GOMEMLIMIT.
	envRE = regexp.MustCompile(`\b(?:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|GOMEMLIMIT)\b`)
	// the command list of `origin --help` and `loadgen --help`.
	subcommandRE = regexp.MustCompile(`(?m)^  ([a-z]+) {2,}\S`)
)

// documentedFlags reads the "`command` flags" section of file: the --flags in
// the first cell of its table rows and the variables in an "environment"
// column, plus those of any other "flags" section it links to (shared flags).
func documentedFlags(t *testing.T, file, command string) (flags, env map[string]bool, hasEnvColumn bool) {
	t.Helper()
	flags, env = map[string]bool{}, map[string]bool{}
	heading := "`" + command + "` flags"
	secs := sections(t, file)
	var sec *section
	for i := range secs {
		if strings.Contains(secs[i].heading, heading) {
			sec = &secs[i]
			break
		}
	}
	if sec == nil {
		t.Errorf("%s: no section headed %q documents the flags of %s", file, heading, command)
		return flags, env, false
	}
	add := func(s *section) {
		for _, tbl := range s.tables() {
			if len(tbl.header) == 0 || tbl.header[0] != "flag" {
				continue
			}
			envCol := slices.Index(tbl.header, "environment")
			if envCol >= 0 {
				hasEnvColumn = true
			}
			for _, row := range tbl.rows {
				for _, span := range codeSpans(row[0]) {
					if name, ok := strings.CutPrefix(span, "--"); ok {
						name, _, _ = strings.Cut(name, " ")
						name, _, _ = strings.Cut(name, "=")
						flags[name] = true
					}
				}
				if envCol >= 0 && envCol < len(row) {
					for _, v := range envRE.FindAllString(row[envCol], -1) {
						env[v] = true
					}
				}
			}
		}
	}
	add(sec)
	// Shared flags: a link to another flags section of the same file.
	linkRE := regexp.MustCompile(`\]\(#([^)]+)\)`)
	for _, l := range sec.lines {
		for _, m := range linkRE.FindAllStringSubmatch(l, -1) {
			for i := range secs {
				if anchor(secs[i].heading) == m[1] && strings.Contains(secs[i].heading, "flags") {
					add(&secs[i])
				}
			}
		}
	}
	return flags, env, hasEnvColumn
}

// anchor is GitHub's anchor for a heading.
func anchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// compare reports, both ways, what the binary has and the doc lacks.
func compare(t *testing.T, what, command, file string, actual, documented map[string]bool, format string) {
	t.Helper()
	for _, n := range sortedKeys(actual) {
		if !documented[n] {
			t.Errorf("%s of `%s`: "+format+" exists (see %s --help) but is not documented in %s", what, command, n, command, file)
		}
	}
	for _, n := range sortedKeys(documented) {
		if !actual[n] {
			t.Errorf("%s of `%s`: %s documents "+format+", which `%s --help` does not have", what, command, file, n, command)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func matches(re *regexp.Regexp, s string) map[string]bool {
	out := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		out[m[len(m)-1]] = true
	}
	return out
}

// TestFlagsDocumented: every flag of edge, origin <command> and loadgen
// <command> (from the binaries' --help) is in its doc table, every flag a
// doc table names exists, and so for the environment variables the edge's
// and origin's flags read.
func TestFlagsDocumented(t *testing.T) {
	// The edge's usage is written by hand; cmd/edge's TestUsageListsEveryFlag
	// holds it to the FlagSet.
	t.Run("edge", func(t *testing.T) {
		out := help(t, "edge", "--help")
		flags, env, _ := documentedFlags(t, configDoc, "edge")
		compare(t, "flag", "edge", configDoc, matches(edgeFlagRE, out), flags, "--%s")
		actualEnv := map[string]bool{}
		for _, v := range envRE.FindAllString(out, -1) {
			actualEnv[v] = true
		}
		compare(t, "environment variable", "edge", configDoc, actualEnv, env, "%s")
	})
	for _, prog := range []struct{ name, file string }{
		{"origin", "docs/origin.md"},
		{"loadgen", "docs/loadgen.md"},
	} {
		subs := sortedKeys(matches(subcommandRE, help(t, prog.name, "--help")))
		if len(subs) < 4 {
			t.Fatalf("%s --help lists only %v as commands; the pattern is broken", prog.name, subs)
		}
		for _, sub := range subs {
			command := prog.name + " " + sub
			t.Run(command, func(t *testing.T) {
				out := help(t, prog.name, sub, "--help")
				actual := matches(defaultsFlagRE, out)
				if len(actual) == 0 {
					t.Fatalf("%s --help lists no flags; the pattern is broken:\n%s", command, out)
				}
				flags, env, hasEnv := documentedFlags(t, prog.file, command)
				compare(t, "flag", command, prog.file, actual, flags, "--%s")
				actualEnv := matches(bracketEnvRE, out)
				if len(actualEnv) > 0 || hasEnv {
					compare(t, "environment variable", command, prog.file, actualEnv, env, "%s")
				}
			})
		}
	}
}
