package deploy

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.yaml.in/yaml/v3"
)

const (
	rulesFile     = "prometheus/rules.yml"
	alertsFile    = "prometheus/alerts.yml"
	ruleTestsFile = "prometheus/alerts_test.yml"
	dashboardFile = "grafana/paycenter.json"
	readmeFile    = "README.md"
	// metricSources is where paycenter registers its metrics; genSources adds the
	// generated procedure names, which are label values too.
	metricSources = "../server/internal"
	genSources    = "../gen/go"
)

// ---------------------------------------------------------------- promtool

// runPromtool runs promtool in prometheus/, or fails the test if it is missing: rules
// nobody checked are worse than none.
func runPromtool(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		bin = "/usr/bin/promtool" // Debian's package, when /usr/bin is not on PATH
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("promtool not found (PATH or /usr/bin/promtool): install it with `apt-get install prometheus` " +
				"(Debian/Ubuntu; or a release tarball from prometheus.io) — the alert rules cannot be checked without it")
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	t.Parallel()
	out := runPromtool(t, "check", "rules", filepath.Base(rulesFile), filepath.Base(alertsFile))
	// The other tests must see every rule Prometheus loads: a wrong yaml tag below would
	// otherwise let them pass on nothing.
	counts := regexp.MustCompile(`Checking (\S+)\s+SUCCESS: (\d+) rules found`).FindAllStringSubmatch(out, -1)
	if len(counts) != 2 {
		t.Fatalf("unexpected promtool output:\n%s", out)
	}
	for _, c := range counts {
		if got := len(loadRules(t, filepath.Join("prometheus", c[1]))); strconv.Itoa(got) != c[2] {
			t.Errorf("%s: promtool found %s rules, this test read %d", c[1], c[2], got)
		}
	}
}

func TestPromtoolUnitTests(t *testing.T) {
	t.Parallel()
	if out := runPromtool(t, "test", "rules", filepath.Base(ruleTestsFile)); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules did not report SUCCESS:\n%s", out)
	}
}

// ---------------------------------------------------------------- alerts

// rule is one recording or alerting rule of a Prometheus rule file.
type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// loadRules returns the rules of all groups of a Prometheus rule file, in file order.
func loadRules(t *testing.T, path string) []rule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	load(t, path, yaml.Unmarshal, &f)
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no rules", path)
	}
	return out
}

// load decodes the file at path into v with unmarshal (yaml.Unmarshal or json.Unmarshal).
func load(t *testing.T, path string, unmarshal func([]byte, any) error, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestAlertsAreComplete: every alert says how urgent it is and what to do, has a row in the
// README's table, and has a unit test that makes it fire and one that keeps it silent.
func TestAlertsAreComplete(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []struct {
					ExpLabels map[string]string `yaml:"exp_labels"`
				} `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	load(t, ruleTestsFile, yaml.Unmarshal, &tests)
	fires := map[string]bool{}  // alertname + "/" + severity
	silent := map[string]bool{} // alertname
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) == 0 {
				silent[a.Alertname] = true
			}
			for _, e := range a.ExpAlerts {
				fires[a.Alertname+"/"+e.ExpLabels["severity"]] = true
			}
		}
	}

	alerts := map[string]bool{}
	for _, r := range loadRules(t, alertsFile) {
		name, sev := r.Alert, r.Labels["severity"]
		if name == "" {
			t.Errorf("%s: a recording rule (%s) among the alerts: put it in %s", alertsFile, r.Record, rulesFile)
			continue
		}
		alerts[name] = true
		if sev != "critical" && sev != "warning" {
			t.Errorf("%s: severity %q, want critical (pages) or warning (tickets)", name, sev)
		}
		for _, k := range []string{"summary", "description", "runbook"} {
			if strings.TrimSpace(r.Annotations[k]) == "" {
				t.Errorf("%s (%s): no %s annotation", name, sev, k)
			}
		}
		if !fires[name+"/"+sev] {
			t.Errorf("%s (%s): no test in %s makes it fire", name, sev, ruleTestsFile)
		}
		if !silent[name] {
			t.Errorf("%s: no test in %s expects it to stay silent", name, ruleTestsFile)
		}
		if !regexp.MustCompile(`(?m)^\|\s*` + regexp.QuoteMeta(name) + `\s*\|`).Match(readme) {
			t.Errorf("%s: no row in the alerts table of %s", name, readmeFile)
		}
	}
	for name := range silent {
		if !alerts[name] { // a typo here would make a negative test pass vacuously
			t.Errorf("%s tests alert %s, which does not exist", ruleTestsFile, name)
		}
	}
}

// ---------------------------------------------------------------- dashboard

// dashboard is the part of the Grafana dashboard model these tests read.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Type  string `json:"type"`
			Name  string `json:"name"`
			Query any    `json:"query"` // a string, or {"query": "..."}
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	GridPos    *struct{}  `json:"gridPos"`
	Datasource datasource `json:"datasource"`
	Targets    []struct {
		Expr         string     `json:"expr"`
		LegendFormat string     `json:"legendFormat"`
		Datasource   datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // the panels of a collapsed row
}

type datasource struct {
	UID string `json:"uid"` // "" when the datasource is missing or null
}

// panels lists the dashboard's panels, rows included, and the panels inside collapsed rows.
func (d dashboard) panels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(append(out, p), p.Panels...)
	}
	return out
}

// templateQuery returns a template variable's query, whichever of its two shapes it has.
func templateQuery(v any) string {
	if m, ok := v.(map[string]any); ok {
		v = m["query"]
	}
	s, _ := v.(string)
	return s
}

// TestDashboard: the dashboard is valid JSON, takes its data source from a variable, and has
// the rows the design asks for.
func TestDashboard(t *testing.T) {
	t.Parallel()
	var d dashboard
	load(t, dashboardFile, json.Unmarshal, &d)
	dsVar := ""
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && templateQuery(v.Query) == "prometheus" {
			dsVar = v.Name
		}
	}
	if dsVar == "" {
		t.Fatal("no Prometheus data source variable in templating")
	}
	wantDS := "${" + dsVar + "}"
	var rows []string
	ids := map[int]bool{}
	for _, p := range d.panels() {
		if ids[p.ID] {
			t.Errorf("panel %q: duplicate id %d", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil {
			t.Errorf("panel %q: no gridPos", p.Title)
		}
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		if p.Datasource.UID != wantDS {
			t.Errorf("panel %q: datasource uid %q, want %s", p.Title, p.Datasource.UID, wantDS)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: a query without expr", p.Title)
			}
			if tg.Datasource.UID != wantDS {
				t.Errorf("panel %q: query datasource uid %q, want %s", p.Title, tg.Datasource.UID, wantDS)
			}
		}
	}
	for _, want := range []string{"RPC", "Payments", "Refunds", "Webhooks", "Ledger", "Database pool", "Go runtime"} {
		if !slices.ContainsFunc(rows, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Errorf("no row %q (rows: %q)", want, rows)
		}
	}
}

// ---------------------------------------------------------------- metric names

// TestMetricNames: every metric, label and label value that a rule or a dashboard query
// names is one paycenter exports, read from the Go sources and from the collectors they
// register — so renaming a metric, a label or a label value breaks this test instead of an
// alert going silently blind. And every paycenter_ metric has a place on the dashboard.
func TestMetricNames(t *testing.T) {
	t.Parallel()
	known := exportedMetrics(t)
	if len(known) < 20 {
		t.Fatalf("found only %d exported series names under %s: the source scan is broken", len(known), metricSources)
	}
	known.add("up") // job and instance, from Prometheus itself

	type query struct{ where, expr, legend string }
	var queries []query
	for _, f := range []string{rulesFile, alertsFile} {
		for _, r := range loadRules(t, f) {
			if r.Record != "" {
				known.addRecord(r.Record, r.Expr)
			}
			queries = append(queries, query{where: f + ": " + r.Record + r.Alert, expr: r.Expr})
		}
	}
	var d dashboard
	load(t, dashboardFile, json.Unmarshal, &d)
	onDashboard := len(queries) // queries[onDashboard:] come from the dashboard
	for _, p := range d.panels() {
		for _, tg := range p.Targets {
			queries = append(queries, query{dashboardFile + ": " + p.Title, tg.Expr, tg.LegendFormat})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := templateQuery(v.Query)
		if m := labelValues.FindStringSubmatch(q); m != nil {
			queries = append(queries, query{dashboardFile + ": variable " + v.Name, m[1], "{{" + m[2] + "}}"})
		} else {
			t.Errorf("dashboard variable %s: query %q is not label_values(selector, label)", v.Name, q)
		}
	}

	shown := map[string]bool{} // metric families the dashboard shows
	legendLabel := regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)
	for i, q := range queries {
		refs, err := scanPromQL(q.expr)
		if err != nil {
			t.Errorf("%s: %v in %q", q.where, err, q.expr)
			continue
		}
		if len(refs.selectors) == 0 {
			t.Errorf("%s: no metric in %q", q.where, q.expr)
		}
		possible := map[string]bool{} // labels the result can carry
		unknown := false              // then the label checks below would only repeat the error
		for _, s := range refs.selectors {
			if i >= onDashboard {
				shown[family(s.name)] = true
			}
			labels, ok := known[s.name]
			switch {
			case s.name == "":
				t.Errorf("%s: a selector without a metric name in %q", q.where, q.expr)
				continue
			case !ok && strings.Contains(s.name, ":"): // level:metric:operations
				t.Errorf("%s: recording rule %s is not defined in %s", q.where, s.name, rulesFile)
				unknown = true
				continue
			case !ok:
				t.Errorf("%s: paycenter does not export %s", q.where, s.name)
				unknown = true
				continue
			}
			for l := range labels {
				possible[l] = true
			}
			for _, m := range s.matchers {
				if values, ok := labels[m.label]; !ok {
					t.Errorf("%s: %s has no label %q (it has %v)", q.where, s.name, m.label, slices.Sorted(maps.Keys(labels)))
				} else if err := checkValue(values, m); err != nil {
					t.Errorf("%s: %s{%s%s%q}: %v", q.where, s.name, m.label, m.op, m.value, err)
				}
			}
		}
		if unknown {
			continue
		}
		for _, l := range refs.groupLabels {
			if !possible[l] {
				t.Errorf("%s: groups by %q, which none of its metrics has (%v)", q.where, l, slices.Sorted(maps.Keys(possible)))
			}
		}
		for _, m := range legendLabel.FindAllStringSubmatch(q.legend, -1) {
			if !possible[m[1]] {
				t.Errorf("%s: legend uses {{%s}}, a label none of its metrics has (%v)", q.where, m[1], slices.Sorted(maps.Keys(possible)))
			}
		}
	}

	// The dashboard shows every paycenter metric (histograms through any of their series).
	for name := range known {
		if strings.HasPrefix(name, "paycenter_") && !strings.Contains(name, ":") && !shown[family(name)] {
			t.Errorf("%s is exported but no panel of %s shows it: add one", name, dashboardFile)
		}
	}
}

// family strips the series suffix of a histogram or summary.
func family(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		name = strings.TrimSuffix(name, suffix)
	}
	return name
}

// checkValue says whether a matcher's value can match a value the label really takes.
// Regex alternatives are checked one by one so a typo in one of them is caught too.
func checkValue(known map[string]bool, m matcher) error {
	if known == nil || m.value == "" || strings.Contains(m.value, "$") {
		return nil // job, instance, le, Grafana variables: nothing to check against
	}
	if m.op == "=" || m.op == "!=" {
		if !known[m.value] {
			return errors.New("no such value in the sources")
		}
		return nil
	}
	flags, v := "", m.value
	if rest, ok := strings.CutPrefix(v, "(?i)"); ok {
		flags, v = "(?i)", rest
	}
	for _, alt := range splitAlternatives(v) {
		re, err := regexp.Compile("^(?:" + flags + alt + ")$")
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(slices.Collect(maps.Keys(known)), re.MatchString) {
			return fmt.Errorf("alternative %q matches no value in the sources", alt)
		}
	}
	return nil
}

// splitAlternatives splits a regex at its top-level |.
func splitAlternatives(re string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(re); i++ {
		switch re[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
		case '|':
			if depth == 0 {
				out, start = append(out, re[start:i]), i+1
			}
		}
	}
	return append(out, re[start:])
}

// ---------------------------------------------------------------- PromQL references

type matcher struct{ label, op, value string }

type selector struct {
	name     string
	matchers []matcher
}

type promRefs struct {
	selectors   []selector
	groupLabels []string // by, without, on, ignoring, group_left/right lists
}

// promString is a PromQL string literal.
const promString = `"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`"

var (
	// bracesRe matches a selector with braces (an optional metric name, then {matchers}), or
	// a string or ${variable}, which may hold braces too.
	bracesRe  = regexp.MustCompile(promString + `|\$\{[^}]*\}|([a-zA-Z_:][\w:]*)?\s*\{((?:[^}"'` + "`]|" + promString + `)*)\}`)
	matcherRe = regexp.MustCompile(`^\s*(\w+)\s*(=~|!~|!=|=)\s*(` + promString + `)\s*(?:,|$)`)
	// noiseRe names no metric: strings, [ranges], $variables, numbers and durations (which
	// start at a word boundary: rate5m stays whole), comments.
	noiseRe    = regexp.MustCompile(promString + `|\[[^\]]*\]|\$\{[^}]*\}|\$\w+|\b\d[\w.]*|#.*`)
	groupingRe = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	// identRe is an identifier; followed by ( it is a function or an aggregation.
	identRe   = regexp.MustCompile(`[a-zA-Z_:][\w:]*(\s*\()?`)
	keywordRe = regexp.MustCompile(`^(?i:and|or|unless|offset|bool|atan2|inf|nan|group_left|group_right)$`)
)

// scanPromQL finds the metric selectors and grouping labels of a PromQL expression. It is a
// scanner, not a parser (promtool has already proved the rules parse): it takes out the
// selectors with braces, then what cannot be a metric, then the grouping label lists; the
// names left that are not functions or keywords are selectors without braces.
func scanPromQL(expr string) (promRefs, error) {
	var r promRefs
	var rest strings.Builder
	last := 0
	for _, m := range bracesRe.FindAllStringSubmatchIndex(expr, -1) {
		if m[4] < 0 {
			continue // a string or a ${variable}
		}
		s := selector{}
		if m[2] >= 0 {
			s.name = expr[m[2]:m[3]]
		}
		var err error
		if s.matchers, err = readMatchers(expr[m[4]:m[5]]); err != nil {
			return r, err
		}
		r.selectors = append(r.selectors, s)
		rest.WriteString(expr[last:m[0]] + " ")
		last = m[1]
	}
	text := noiseRe.ReplaceAllString(rest.String()+expr[last:], " ")
	for _, m := range groupingRe.FindAllStringSubmatch(text, -1) {
		for l := range strings.SplitSeq(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				r.groupLabels = append(r.groupLabels, l)
			}
		}
	}
	text = groupingRe.ReplaceAllString(text, " ")
	if i := strings.IndexAny(text, "{}[]\"'`"); i >= 0 {
		return r, fmt.Errorf("unbalanced %q", text[i:])
	}
	for _, m := range identRe.FindAllStringSubmatch(text, -1) {
		if m[1] == "" && !keywordRe.MatchString(m[0]) {
			r.selectors = append(r.selectors, selector{name: m[0]})
		}
	}
	return r, nil
}

// readMatchers reads the `label op "value", ...` inside a selector's braces.
func readMatchers(body string) ([]matcher, error) {
	var out []matcher
	for strings.TrimSpace(body) != "" {
		m := matcherRe.FindStringSubmatch(body)
		if m == nil {
			return nil, fmt.Errorf("bad label matcher at %q", body)
		}
		v, err := unquote(m[3])
		if err != nil {
			return nil, fmt.Errorf("label matcher %s: %w", m[0], err)
		}
		out = append(out, matcher{label: m[1], op: m[2], value: v})
		body = body[len(m[0]):]
	}
	return out, nil
}

// unquote reads a PromQL string literal: Go's rules, plus single quotes.
func unquote(s string) (string, error) {
	if len(s) >= 2 && s[0] == '\'' {
		s = `"` + strings.ReplaceAll(strings.ReplaceAll(s[1:len(s)-1], `\'`, `'`), `"`, `\"`) + `"`
	}
	return strconv.Unquote(s)
}

// ---------------------------------------------------------------- what paycenter exports

// exported maps each series name to its labels, and each label to the values it can take
// (nil: any, like job or the build version).
type exported map[string]map[string]map[string]bool

func (e exported) add(name string, labels ...string) map[string]map[string]bool {
	if e[name] == nil {
		e[name] = map[string]map[string]bool{"job": nil, "instance": nil} // added by the scrape
	}
	for _, l := range labels {
		if _, ok := e[name][l]; !ok {
			e[name][l] = nil
		}
	}
	return e[name]
}

// addFamily adds the series of a metric of kind (dto.MetricType's names: COUNTER, GAUGE,
// HISTOGRAM, SUMMARY...) and returns their names.
func (e exported) addFamily(name, kind string, labels ...string) []string {
	series := []string{name}
	switch kind {
	case "HISTOGRAM":
		series = []string{name + "_bucket", name + "_sum", name + "_count"}
		e.add(name+"_bucket", "le")
	case "SUMMARY":
		series = []string{name, name + "_sum", name + "_count"}
		e.add(name, "quantile")
	}
	for _, sn := range series {
		e.add(sn, labels...)
	}
	return series
}

// addRecord adds a recording rule: it may carry any label of the series it is computed from
// (aggregations drop some, which this does not try to follow), with their values. Rules
// must come after the rules they use, as Prometheus evaluates them in order.
func (e exported) addRecord(name, expr string) {
	rec := e.add(name)
	refs, _ := scanPromQL(expr) // an error is reported when the expression itself is checked
	for _, s := range refs.selectors {
		for l, values := range e[s.name] {
			had, ok := rec[l]
			switch {
			case ok && had == nil || values == nil:
				rec[l] = nil
			case !ok:
				rec[l] = maps.Clone(values)
			default:
				maps.Copy(had, values)
			}
		}
	}
}

// exportedMetrics reads what paycenter exports: paycenter_* metrics from the prometheus.New*
// calls under server/internal, their label values from the string literals there and in the
// generated code (the RPC code from connect.Code); the runtime and pool metrics by gathering
// the very collectors server/internal registers.
func exportedMetrics(t *testing.T) exported {
	t.Helper()
	out := exported{}
	literals := map[string]bool{}
	reg := prometheus.NewRegistry()
	fset := token.NewFileSet()
	for _, root := range []string{metricSources, genSources} {
		err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if s, ok := stringLit(n); ok {
					literals[s] = true
				} else if call, ok := n.(*ast.CallExpr); ok && root == metricSources {
					if err := readMetric(call, out, reg); err != nil {
						t.Errorf("%s: %v", fset.Position(n.Pos()), err)
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// Label values from the source: connect codes, the ledger's lower-cased codes and
	// refusals, any string literal for the rest (refund events, pre-created channels...).
	codes := map[string]bool{"ok": true}
	for c := connect.Code(1); c <= 16; c++ {
		codes[c.String()] = true
	}
	lowered := map[string]bool{}
	for l := range literals {
		lowered[l], lowered[strings.ToLower(l)] = true, true
	}
	for name, labels := range out {
		for l := range labels {
			switch {
			case l == "job" || l == "instance" || l == "le" || l == "quantile" || l == "version" || l == "go_version":
				// set by the scrape, numbers, or values from the build at run time
			case strings.HasPrefix(name, "paycenter_rpc_") && l == "code":
				labels[l] = codes
			case strings.HasPrefix(name, "paycenter_ledger_"):
				labels[l] = lowered
			default:
				labels[l] = literals
			}
		}
	}

	// The collectors' metrics, with the label values they really use.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		for _, sn := range out.addFamily(mf.GetName(), mf.GetType().String()) {
			labels := out[sn]
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if labels[lp.GetName()] == nil {
						labels[lp.GetName()] = map[string]bool{}
					}
					labels[lp.GetName()][lp.GetValue()] = true
				}
			}
		}
	}
	return out
}

// readMetric adds to out the series a call exports if it is a prometheus.New* metric
// constructor, and registers with reg the client_golang collectors it creates.
func readMetric(call *ast.CallExpr, out exported, reg *prometheus.Registry) error {
	switch fn := types.ExprString(call.Fun); fn {
	case "prometheus.NewCounter", "prometheus.NewCounterVec", "prometheus.NewGauge", "prometheus.NewGaugeVec",
		"prometheus.NewHistogram", "prometheus.NewHistogramVec", "prometheus.NewSummary", "prometheus.NewSummaryVec":
		name, labels, err := readOpts(call.Args[0])
		if err != nil {
			return err
		}
		if strings.HasSuffix(fn, "Vec") {
			vl, ok := stringList(call.Args[1])
			if !ok {
				return errors.New("label names are not a literal")
			}
			labels = append(labels, vl...)
		}
		kind := strings.ToUpper(strings.TrimSuffix(strings.TrimPrefix(fn, "prometheus.New"), "Vec"))
		out.addFamily(name, kind, labels...)
	case "prometheus.NewDesc":
		name, ok1 := stringLit(call.Args[0])
		labels, ok2 := stringList(call.Args[2])
		constLabels, ok3 := stringList(call.Args[3])
		if !ok1 || !ok2 || !ok3 {
			return errors.New("NewDesc: the name and labels are not literals")
		}
		out.add(name, append(labels, constLabels...)...)
	case "collectors.NewGoCollector":
		if len(call.Args) != 0 {
			return errors.New("NewGoCollector with options: teach this test which runtime metrics they add")
		}
		reg.MustRegister(collectors.NewGoCollector())
	case "collectors.NewProcessCollector":
		if types.ExprString(call.Args[0]) != "collectors.ProcessCollectorOpts{}" {
			return errors.New("NewProcessCollector with options: teach this test what they change")
		}
		reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	case "collectors.NewDBStatsCollector":
		dbName, ok := stringLit(call.Args[1])
		if !ok {
			return errors.New("NewDBStatsCollector: the db name is not a literal")
		}
		reg.MustRegister(collectors.NewDBStatsCollector(sql.OpenDB(noDB{}), dbName))
	}
	return nil
}

// readOpts reads Name (with Namespace and Subsystem) and ConstLabels of a prometheus.*Opts literal.
func readOpts(e ast.Expr) (string, []string, error) {
	fields := map[string]ast.Expr{}
	if lit, ok := e.(*ast.CompositeLit); ok {
		for _, el := range lit.Elts {
			if kv, ok := el.(*ast.KeyValueExpr); ok {
				fields[types.ExprString(kv.Key)] = kv.Value
			}
		}
	}
	var parts [3]string
	for i, k := range []string{"Namespace", "Subsystem", "Name"} {
		if v, ok := fields[k]; ok {
			if parts[i], ok = stringLit(v); !ok {
				return "", nil, fmt.Errorf("metric options: %s is not a string literal", k)
			}
		}
	}
	constLabels, ok := stringList(fields["ConstLabels"])
	if parts[2] == "" || !ok {
		return "", nil, errors.New("metric options are not a literal with Name: cannot read the metric")
	}
	return prometheus.BuildFQName(parts[0], parts[1], parts[2]), constLabels, nil
}

func stringLit(n ast.Node) (string, bool) {
	lit, ok := n.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// stringList reads []string{"a", "b"}, the keys of prometheus.Labels{"k": v}, or nil.
func stringList(e ast.Expr) ([]string, bool) {
	if e == nil || types.ExprString(e) == "nil" {
		return nil, true
	}
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil, false
	}
	var out []string
	for _, el := range lit.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			el = kv.Key
		}
		s, ok := stringLit(el)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// noDB gives the DB stats collector a *sql.DB that never connects.
type noDB struct{}

var errNoDB = errors.New("no database in this test")

func (noDB) Connect(context.Context) (driver.Conn, error) { return nil, errNoDB }
func (d noDB) Driver() driver.Driver                      { return d }
func (noDB) Open(string) (driver.Conn, error)             { return nil, errNoDB }
