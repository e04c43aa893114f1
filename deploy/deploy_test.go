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
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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

// promtool finds promtool, or fails the test: rules nobody checked are worse than none.
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	const debian = "/usr/bin/promtool"
	if _, err := os.Stat(debian); err == nil {
		return debian
	}
	t.Fatal("promtool not found (PATH or /usr/bin/promtool): install it with `apt-get install prometheus` " +
		"(Debian/Ubuntu; or a release tarball from prometheus.io) — the alert rules cannot be checked without it")
	return ""
}

func runPromtool(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
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
	// Cross-check the little YAML reader below against promtool's own count, so the other
	// tests cannot pass by silently reading fewer rules than Prometheus loads.
	counts := regexp.MustCompile(`Checking (\S+)\s+SUCCESS: (\d+) rules found`).FindAllStringSubmatch(out, -1)
	if len(counts) != 2 {
		t.Fatalf("unexpected promtool output:\n%s", out)
	}
	for _, c := range counts {
		want, _ := strconv.Atoi(c[2])
		if got := len(loadRules(t, filepath.Join("prometheus", c[1]))); got != want {
			t.Errorf("%s: promtool found %d rules, this test read %d", c[1], want, got)
		}
	}
}

func TestPromtoolUnitTests(t *testing.T) {
	t.Parallel()
	out := runPromtool(t, "test", "rules", filepath.Base(ruleTestsFile))
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules did not report SUCCESS:\n%s", out)
	}
}

// TestAlertsAreComplete: every alert says how urgent it is and what to do, is described in
// the README, and has a unit test that makes it fire and one that keeps it silent.
func TestAlertsAreComplete(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}  // alertname + "/" + severity
	silent := map[string]bool{} // alertname
	tests := loadYAML(t, ruleTestsFile).(map[string]any)
	for _, tc := range list(tests["tests"]) {
		tc := tc.(map[string]any)
		for _, a := range list(tc["alert_rule_test"]) {
			a := a.(map[string]any)
			name := str(a["alertname"])
			exp := list(a["exp_alerts"])
			if len(exp) == 0 {
				silent[name] = true
			}
			for _, e := range exp {
				labels, _ := e.(map[string]any)["exp_labels"].(map[string]any)
				fires[name+"/"+str(labels["severity"])] = true
			}
		}
	}

	alerts := map[string]bool{}
	for _, r := range loadRules(t, alertsFile) {
		name := str(r["alert"])
		if name == "" {
			t.Errorf("%s: a recording rule (%s) among the alerts: put it in %s", alertsFile, str(r["record"]), rulesFile)
			continue
		}
		alerts[name] = true
		labels, _ := r["labels"].(map[string]any)
		sev := str(labels["severity"])
		if sev != "critical" && sev != "warning" {
			t.Errorf("%s: severity %q, want critical (pages) or warning (tickets)", name, sev)
		}
		ann, _ := r["annotations"].(map[string]any)
		for _, k := range []string{"summary", "description", "runbook"} {
			if strings.TrimSpace(str(ann[k])) == "" {
				t.Errorf("%s (%s): no %s annotation", name, sev, k)
			}
		}
		if !fires[name+"/"+sev] {
			t.Errorf("%s (%s): no test in %s makes it fire", name, sev, ruleTestsFile)
		}
		if !silent[name] {
			t.Errorf("%s: no test in %s expects it to stay silent", name, ruleTestsFile)
		}
		if !strings.Contains(string(readme), name) {
			t.Errorf("%s: not described in %s", name, readmeFile)
		}
	}
	for name := range silent {
		if !alerts[name] { // a typo here would make a negative test pass vacuously
			t.Errorf("%s tests alert %s, which does not exist", ruleTestsFile, name)
		}
	}
}

// TestDashboard: the dashboard is valid JSON, takes its data source from a variable, and has
// the rows the design asks for.
func TestDashboard(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	dsVar := ""
	tmpl, _ := d["templating"].(map[string]any)
	for _, v := range list(tmpl["list"]) {
		v := v.(map[string]any)
		if v["type"] == "datasource" && v["query"] == "prometheus" {
			dsVar = str(v["name"])
		}
	}
	if dsVar == "" {
		t.Fatal("no Prometheus data source variable in templating")
	}
	wantDS := "${" + dsVar + "}"
	var rows []string
	ids := map[float64]bool{}
	for _, p := range panels(d) {
		title := str(p["title"])
		id, _ := p["id"].(float64)
		if ids[id] {
			t.Errorf("panel %q: duplicate id %v", title, id)
		}
		ids[id] = true
		if _, ok := p["gridPos"].(map[string]any); !ok {
			t.Errorf("panel %q: no gridPos", title)
		}
		if p["type"] == "row" {
			rows = append(rows, title)
			continue
		}
		if ds, _ := p["datasource"].(map[string]any); str(ds["uid"]) != wantDS {
			t.Errorf("panel %q: datasource %v, want uid %s", title, p["datasource"], wantDS)
		}
		targets := list(p["targets"])
		if len(targets) == 0 {
			t.Errorf("panel %q: no queries", title)
		}
		for _, tg := range targets {
			tg := tg.(map[string]any)
			if strings.TrimSpace(str(tg["expr"])) == "" {
				t.Errorf("panel %q: a query without expr", title)
			}
			if ds, _ := tg["datasource"].(map[string]any); str(ds["uid"]) != wantDS {
				t.Errorf("panel %q: query datasource %v, want uid %s", title, tg["datasource"], wantDS)
			}
		}
	}
	for _, want := range []string{"RPC", "Payments", "Refunds", "Webhooks", "Ledger", "Database pool", "Go runtime"} {
		if !slices.ContainsFunc(rows, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Errorf("no row %q (rows: %q)", want, rows)
		}
	}
}

// TestMetricNames: every metric, label and label value that a rule or a dashboard query
// names is one paycenter exports, read from the Go sources and from the collectors they
// register — so renaming a metric, a label or a label value breaks this test instead of an
// alert going silently blind. And every paycenter_ metric has a place on the dashboard.
func TestMetricNames(t *testing.T) {
	t.Parallel()
	exported := exportedMetrics(t)
	if len(exported) < 20 {
		t.Fatalf("found only %d exported series names under %s: the source scan is broken", len(exported), metricSources)
	}

	type query struct{ where, expr, legend string }
	var queries []query
	records := map[string]string{} // recording rule name -> its expression
	for _, f := range []string{rulesFile, alertsFile} {
		for _, r := range loadRules(t, f) {
			name := str(r["record"]) + str(r["alert"])
			if rec := str(r["record"]); rec != "" {
				records[rec] = str(r["expr"])
			}
			queries = append(queries, query{where: f + ": " + name, expr: str(r["expr"])})
		}
	}
	d := loadDashboard(t)
	for _, p := range panels(d) {
		for _, tg := range list(p["targets"]) {
			tg := tg.(map[string]any)
			queries = append(queries, query{where: dashboardFile + ": " + str(p["title"]), expr: str(tg["expr"]), legend: str(tg["legendFormat"])})
		}
	}
	tmpl, _ := d["templating"].(map[string]any)
	for _, v := range list(tmpl["list"]) {
		v := v.(map[string]any)
		if v["type"] == "query" {
			q := str(v["query"])
			if m, ok := v["query"].(map[string]any); ok {
				q = str(m["query"])
			}
			if m := regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`).FindStringSubmatch(q); m != nil {
				queries = append(queries, query{where: dashboardFile + ": variable " + str(v["name"]), expr: m[1], legend: "{{" + m[2] + "}}"})
			} else {
				t.Errorf("dashboard variable %s: query %q is not label_values(selector, label)", v["name"], q)
			}
		}
	}

	// labelsOf says which labels a metric or recording rule can carry.
	var labelsOf func(name string, seen map[string]bool) map[string]bool
	labelsOf = func(name string, seen map[string]bool) map[string]bool {
		out := map[string]bool{"job": true, "instance": true}
		if name == "up" {
			return out
		}
		if m, ok := exported[name]; ok {
			for l := range m {
				out[l] = true
			}
			return out
		}
		if expr, ok := records[name]; ok && !seen[name] {
			seen[name] = true
			refs, _ := scanPromQL(expr)
			for _, s := range refs.selectors {
				for l := range labelsOf(s.name, seen) {
					out[l] = true
				}
			}
		}
		return out
	}

	// valuesOf says which values a label of a metric or recording rule can take (nil: any).
	var valuesOf func(name, label string, seen map[string]bool) map[string]bool
	valuesOf = func(name, label string, seen map[string]bool) map[string]bool {
		if m, ok := exported[name]; ok {
			return m[label]
		}
		expr, ok := records[name]
		if !ok || seen[name] {
			return nil
		}
		seen[name] = true
		refs, _ := scanPromQL(expr)
		out := map[string]bool{}
		for _, s := range refs.selectors {
			if !labelsOf(s.name, map[string]bool{})[label] {
				continue
			}
			vs := valuesOf(s.name, label, seen)
			if vs == nil {
				return nil
			}
			for v := range vs {
				out[v] = true
			}
		}
		return out
	}

	for _, q := range queries {
		refs, err := scanPromQL(q.expr)
		if err != nil {
			t.Errorf("%s: %v in %q", q.where, err, q.expr)
			continue
		}
		if len(refs.selectors) == 0 {
			t.Errorf("%s: no metric in %q", q.where, q.expr)
		}
		possible := map[string]bool{}
		unknown := false // then the label checks below would only repeat the error
		for _, s := range refs.selectors {
			switch {
			case s.name == "":
				t.Errorf("%s: a selector without a metric name in %q", q.where, q.expr)
				continue
			case s.name == "up":
			case strings.Contains(s.name, ":"):
				if _, ok := records[s.name]; !ok {
					t.Errorf("%s: recording rule %s is not defined in %s", q.where, s.name, rulesFile)
					unknown = true
					continue
				}
			default:
				if _, ok := exported[s.name]; !ok {
					t.Errorf("%s: paycenter does not export %s", q.where, s.name)
					unknown = true
					continue
				}
			}
			labels := labelsOf(s.name, map[string]bool{})
			for l := range labels {
				possible[l] = true
			}
			for _, m := range s.matchers {
				if !labels[m.label] {
					t.Errorf("%s: %s has no label %q (it has %v)", q.where, s.name, m.label, keys(labels))
					continue
				}
				if err := checkValue(valuesOf(s.name, m.label, map[string]bool{}), m); err != nil {
					t.Errorf("%s: %s{%s%s%q}: %v", q.where, s.name, m.label, m.op, m.value, err)
				}
			}
		}
		if unknown {
			continue
		}
		for _, l := range refs.groupLabels {
			if !possible[l] {
				t.Errorf("%s: groups by %q, which none of its metrics has (%v)", q.where, l, keys(possible))
			}
		}
		for _, m := range regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`).FindAllStringSubmatch(q.legend, -1) {
			if !possible[m[1]] {
				t.Errorf("%s: legend uses {{%s}}, a label none of its metrics has (%v)", q.where, m[1], keys(possible))
			}
		}
	}

	// The dashboard shows every paycenter metric (histograms through any of their series).
	dashUsed := map[string]bool{}
	for _, q := range queries {
		if strings.HasPrefix(q.where, dashboardFile) {
			refs, _ := scanPromQL(q.expr)
			for _, s := range refs.selectors {
				dashUsed[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s.name, "_bucket"), "_sum"), "_count")] = true
			}
		}
	}
	for name := range exported {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(name, "paycenter_") && !dashUsed[base] && !dashUsed[name] {
			t.Errorf("%s is exported but no panel of %s shows it: add one", name, dashboardFile)
		}
	}
}

// ---------------------------------------------------------------- what paycenter exports

// exported maps each series name paycenter exports to its labels, and each label to the
// values it can take (nil: not checked, like build versions).
type exported map[string]map[string]map[string]bool

// exportedMetrics reads what paycenter exports: paycenter_* metrics from the prometheus.New*
// calls under server/internal, their label values from the string literals there (the RPC
// code from connect.Code); the runtime and pool metrics by gathering the very collectors
// server/internal registers.
func exportedMetrics(t *testing.T) exported {
	t.Helper()
	out := exported{}
	add := func(name string, labels ...string) {
		if out[name] == nil {
			out[name] = map[string]map[string]bool{}
		}
		for _, l := range labels {
			if _, ok := out[name][l]; !ok {
				out[name][l] = nil
			}
		}
	}
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
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						literals[s] = true
					}
				}
				call, ok := n.(*ast.CallExpr)
				if !ok || root != metricSources {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, _ := sel.X.(*ast.Ident)
				if pkg == nil {
					return true
				}
				where := fset.Position(call.Pos()).String()
				switch pkg.Name + "." + sel.Sel.Name {
				case "prometheus.NewCounter", "prometheus.NewCounterVec", "prometheus.NewGauge", "prometheus.NewGaugeVec",
					"prometheus.NewHistogram", "prometheus.NewHistogramVec", "prometheus.NewSummary", "prometheus.NewSummaryVec":
					name, constLabels, err := readOpts(call.Args[0])
					if err != nil {
						t.Errorf("%s: %v", where, err)
						return true
					}
					labels := constLabels
					if strings.HasSuffix(sel.Sel.Name, "Vec") {
						vl, err := stringList(call.Args[1])
						if err != nil {
							t.Errorf("%s: %v", where, err)
						}
						labels = append(labels, vl...)
					}
					switch {
					case strings.Contains(sel.Sel.Name, "Histogram"):
						add(name+"_bucket", append(labels, "le")...)
						add(name+"_sum", labels...)
						add(name+"_count", labels...)
					case strings.Contains(sel.Sel.Name, "Summary"):
						add(name, append(labels, "quantile")...)
						add(name+"_sum", labels...)
						add(name+"_count", labels...)
					default:
						add(name, labels...)
					}
				case "prometheus.NewDesc":
					name, err := stringLit(call.Args[0])
					if err != nil {
						t.Errorf("%s: metric name: %v", where, err)
						return true
					}
					labels, err := stringList(call.Args[2])
					if err != nil {
						t.Errorf("%s: %v", where, err)
					}
					cl, err := labelKeys(call.Args[3])
					if err != nil {
						t.Errorf("%s: %v", where, err)
					}
					add(name, append(labels, cl...)...)
				case "collectors.NewGoCollector":
					if len(call.Args) != 0 {
						t.Errorf("%s: NewGoCollector with options: teach this test which runtime metrics they add", where)
					}
					reg.MustRegister(collectors.NewGoCollector())
				case "collectors.NewProcessCollector":
					if lit, ok := call.Args[0].(*ast.CompositeLit); !ok || len(lit.Elts) != 0 {
						t.Errorf("%s: NewProcessCollector with options: teach this test what they change", where)
					}
					reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
				case "collectors.NewDBStatsCollector":
					dbName, err := stringLit(call.Args[1])
					if err != nil {
						t.Errorf("%s: db name: %v", where, err)
						return true
					}
					reg.MustRegister(collectors.NewDBStatsCollector(sql.OpenDB(noConnector{}), dbName))
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	observed := map[string]map[string]map[string]bool{} // gathered series -> label -> values
	for _, mf := range families {
		name := mf.GetName()
		series := []string{name}
		switch mf.GetType().String() {
		case "HISTOGRAM":
			series = []string{name + "_bucket", name + "_sum", name + "_count"}
		case "SUMMARY":
			series = append(series, name+"_sum", name+"_count")
		}
		for _, sn := range series {
			add(sn)
			observed[sn] = map[string]map[string]bool{}
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if observed[sn][lp.GetName()] == nil {
						observed[sn][lp.GetName()] = map[string]bool{}
					}
					observed[sn][lp.GetName()][lp.GetValue()] = true
				}
			}
			for l := range observed[sn] {
				add(sn, l)
			}
			if strings.HasSuffix(sn, "_bucket") {
				add(sn, "le")
			}
			if mf.GetType().String() == "SUMMARY" && sn == name {
				add(sn, "quantile")
			}
		}
	}

	codes := map[string]bool{"ok": true} // metrics.Code: "ok" or connect.Code.String()
	for c := connect.Code(1); c <= 16; c++ {
		codes[c.String()] = true
	}
	lowered := map[string]bool{} // the ledger lower-cases its codes and refusals
	for l := range literals {
		lowered[l], lowered[strings.ToLower(l)] = true, true
	}
	for name, labels := range out {
		for l := range labels {
			switch {
			case observed[name] != nil:
				labels[l] = observed[name][l]
			case l == "le" || l == "quantile" || l == "version" || l == "go_version":
				// numbers, and values set from the build at run time
			case strings.HasPrefix(name, "paycenter_rpc_") && l == "code":
				labels[l] = codes
			case strings.HasPrefix(name, "paycenter_ledger_"):
				labels[l] = lowered
			default:
				labels[l] = literals
			}
		}
	}
	return out
}

// readOpts reads Name (with Namespace and Subsystem) and ConstLabels of a prometheus.*Opts literal.
func readOpts(e ast.Expr) (string, []string, error) {
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return "", nil, errors.New("metric options are not a literal: cannot read the metric name")
	}
	var parts [3]string
	var constLabels []string
	for _, el := range lit.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		key, _ := kv.Key.(*ast.Ident)
		if key == nil {
			continue
		}
		var err error
		switch key.Name {
		case "Namespace":
			parts[0], err = stringLit(kv.Value)
		case "Subsystem":
			parts[1], err = stringLit(kv.Value)
		case "Name":
			parts[2], err = stringLit(kv.Value)
		case "ConstLabels":
			constLabels, err = labelKeys(kv.Value)
		}
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", key.Name, err)
		}
	}
	if parts[2] == "" {
		return "", nil, errors.New("metric without a Name")
	}
	return prometheus.BuildFQName(parts[0], parts[1], parts[2]), constLabels, nil
}

func stringLit(e ast.Expr) (string, error) {
	if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
		return strconv.Unquote(lit.Value)
	}
	return "", fmt.Errorf("not a string literal: %T", e)
}

// stringList reads []string{"a", "b"} (or nil).
func stringList(e ast.Expr) ([]string, error) {
	if id, ok := e.(*ast.Ident); ok && id.Name == "nil" {
		return nil, nil
	}
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil, fmt.Errorf("label names are not a literal: %T", e)
	}
	var out []string
	for _, el := range lit.Elts {
		s, err := stringLit(el)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// labelKeys reads the keys of prometheus.Labels{"k": v} (or nil).
func labelKeys(e ast.Expr) ([]string, error) {
	if id, ok := e.(*ast.Ident); ok && id.Name == "nil" {
		return nil, nil
	}
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil, fmt.Errorf("const labels are not a literal: %T", e)
	}
	var out []string
	for _, el := range lit.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			return nil, errors.New("const labels: not key: value")
		}
		s, err := stringLit(kv.Key)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// noConnector gives the DB stats collector a *sql.DB that never connects.
type noConnector struct{}

func (noConnector) Connect(context.Context) (driver.Conn, error) {
	return nil, errors.New("no database in this test")
}

func (noConnector) Driver() driver.Driver { return noDriver{} }

type noDriver struct{}

func (noDriver) Open(string) (driver.Conn, error) { return nil, errors.New("no database in this test") }

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
	flags := ""
	v := m.value
	if strings.HasPrefix(v, "(?i)") {
		flags, v = "(?i)", v[4:]
	}
	for _, alt := range splitAlternatives(v) {
		re, err := regexp.Compile("^(?:" + flags + alt + ")$")
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(keys(known), re.MatchString) {
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
				out = append(out, re[start:i])
				start = i + 1
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

var (
	aggregators = set("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio")
	groupingWords = set("by", "without", "on", "ignoring", "group_left", "group_right")
	operatorWords = set("and", "or", "unless", "offset", "bool", "atan2", "inf", "nan")
)

// scanPromQL finds the metric selectors and grouping labels of a PromQL expression. It is a
// scanner, not a parser: promtool has already proved the rules parse.
func scanPromQL(expr string) (promRefs, error) {
	var r promRefs
	n := len(expr)
	skipSpace := func(i int) int {
		for i < n && strings.ContainsRune(" \t\r\n", rune(expr[i])) {
			i++
		}
		return i
	}
	for i := 0; i < n; {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			_, j, err := readString(expr, i)
			if err != nil {
				return r, err
			}
			i = j
		case c == '[': // ranges, subqueries, $__rate_interval
			j := strings.IndexByte(expr[i:], ']')
			if j < 0 {
				return r, errors.New("unclosed [")
			}
			i += j + 1
		case c == '$':
			i++
			if i < n && expr[i] == '{' {
				j := strings.IndexByte(expr[i:], '}')
				if j < 0 {
					return r, errors.New("unclosed ${")
				}
				i += j + 1
			}
			for i < n && isIdent(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < n && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < n && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := skipSpace(j)
			switch {
			case groupingWords[word]:
				i = k
				if k < n && expr[k] == '(' {
					end := strings.IndexByte(expr[k:], ')')
					if end < 0 {
						return r, errors.New("unclosed label list")
					}
					for l := range strings.SplitSeq(expr[k+1:k+end], ",") {
						if l = strings.TrimSpace(l); l != "" {
							r.groupLabels = append(r.groupLabels, l)
						}
					}
					i = k + end + 1
				}
			case operatorWords[strings.ToLower(word)], aggregators[word], k < n && expr[k] == '(':
				i = j // an operator, aggregation or function
			default:
				s := selector{name: word}
				i = j
				if k < n && expr[k] == '{' {
					ms, end, err := readMatchers(expr, k)
					if err != nil {
						return r, err
					}
					s.matchers, i = ms, end
				}
				r.selectors = append(r.selectors, s)
			}
		case c == '{':
			ms, end, err := readMatchers(expr, i)
			if err != nil {
				return r, err
			}
			r.selectors = append(r.selectors, selector{matchers: ms})
			i = end
		default:
			i++
		}
	}
	return r, nil
}

// readMatchers reads {label op "value", ...} starting at the brace; returns the index after it.
func readMatchers(expr string, i int) ([]matcher, int, error) {
	var out []matcher
	i++ // {
	for i < len(expr) {
		for i < len(expr) && strings.ContainsRune(" \t\r\n,", rune(expr[i])) {
			i++
		}
		if i < len(expr) && expr[i] == '}' {
			return out, i + 1, nil
		}
		j := i
		for j < len(expr) && isIdent(expr[j]) {
			j++
		}
		if j == i {
			return nil, 0, fmt.Errorf("bad label matcher at %q", expr[i:])
		}
		m := matcher{label: expr[i:j]}
		q := strings.IndexAny(expr[j:], `"'`+"`")
		if q < 0 {
			return nil, 0, fmt.Errorf("label matcher without a value at %q", expr[i:])
		}
		j += q
		m.op = strings.TrimSpace(expr[i+len(m.label) : j])
		if !slices.Contains([]string{"=", "!=", "=~", "!~"}, m.op) {
			return nil, 0, fmt.Errorf("bad matcher operator %q", m.op)
		}
		v, end, err := readString(expr, j)
		if err != nil {
			return nil, 0, err
		}
		m.value, i = v, end
		out = append(out, m)
	}
	return nil, 0, errors.New("unclosed {")
}

// readString reads a PromQL string literal at i; returns its value and the index after it.
func readString(s string, i int) (string, int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			raw := s[i : j+1]
			if q == '\'' {
				raw = `"` + strings.ReplaceAll(strings.ReplaceAll(raw[1:len(raw)-1], `\'`, `'`), `"`, `\"`) + `"`
			}
			v, err := strconv.Unquote(raw)
			return v, j + 1, err
		}
	}
	return "", 0, errors.New("unclosed string")
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// ---------------------------------------------------------------- files

func loadDashboard(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// panels lists the dashboard's panels, rows included, and the panels inside collapsed rows.
func panels(d map[string]any) []map[string]any {
	var out []map[string]any
	for _, p := range list(d["panels"]) {
		p := p.(map[string]any)
		out = append(out, p)
		for _, c := range list(p["panels"]) {
			out = append(out, c.(map[string]any))
		}
	}
	return out
}

// loadRules returns the rules of a Prometheus rule file, each as a map.
func loadRules(t *testing.T, path string) []map[string]any {
	t.Helper()
	doc, ok := loadYAML(t, path).(map[string]any)
	if !ok {
		t.Fatalf("%s: not a mapping", path)
	}
	var out []map[string]any
	for _, g := range list(doc["groups"]) {
		for _, r := range list(g.(map[string]any)["rules"]) {
			out = append(out, r.(map[string]any))
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no rules", path)
	}
	return out
}

func loadYAML(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := parseYAML(string(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// parseYAML reads the block-style YAML these files are written in: mappings, sequences,
// plain and quoted scalars, | and > block scalars, {k: v} and [] flow collections. go.mod has
// no YAML library, and TestPromtoolCheckRules compares what this reads with what promtool
// reads.
func parseYAML(src string) (any, error) {
	p := &yamlParser{lines: strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")}
	v, err := p.node(0)
	if err != nil {
		return nil, err
	}
	p.skipBlank()
	if p.i < len(p.lines) {
		return nil, fmt.Errorf("line %d: unexpected %q", p.i+1, strings.TrimSpace(p.lines[p.i]))
	}
	return v, nil
}

type yamlParser struct {
	lines []string
	i     int
}

var yamlKey = regexp.MustCompile(`^([A-Za-z_][\w.-]*):(?:\s+|$)`)

func (p *yamlParser) skipBlank() {
	for p.i < len(p.lines) && strings.TrimSpace(stripComment(p.lines[p.i])) == "" {
		p.i++
	}
}

func indentOf(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

func isItem(s string) bool {
	s = strings.TrimSpace(s)
	return s == "-" || strings.HasPrefix(s, "- ")
}

func (p *yamlParser) node(minIndent int) (any, error) {
	p.skipBlank()
	if p.i >= len(p.lines) || indentOf(p.lines[p.i]) < minIndent {
		return nil, nil
	}
	if isItem(p.lines[p.i]) {
		return p.sequence(indentOf(p.lines[p.i]))
	}
	return p.mapping(indentOf(p.lines[p.i]))
}

func (p *yamlParser) sequence(indent int) ([]any, error) {
	out := []any{}
	for p.skipBlank(); p.i < len(p.lines) && indentOf(p.lines[p.i]) == indent && isItem(p.lines[p.i]); p.skipBlank() {
		line := p.lines[p.i]
		rest := line[indent+1:]
		col := indent + 1 + indentOf(rest)
		rest = strings.TrimSpace(stripComment(rest))
		switch {
		case rest == "":
			p.i++
			v, err := p.node(indent + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		case yamlKey.MatchString(rest):
			// "- key: value": a mapping whose first key sits where the item's text starts.
			p.lines[p.i] = strings.Repeat(" ", col) + strings.TrimLeft(line[indent+1:], " ")
			v, err := p.mapping(col)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		default:
			p.i++
			v, err := scalar(rest)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", p.i, err)
			}
			out = append(out, v)
		}
	}
	return out, nil
}

func (p *yamlParser) mapping(indent int) (map[string]any, error) {
	out := map[string]any{}
	for p.skipBlank(); p.i < len(p.lines) && indentOf(p.lines[p.i]) == indent && !isItem(p.lines[p.i]); p.skipBlank() {
		text := strings.TrimSpace(p.lines[p.i])
		m := yamlKey.FindStringSubmatch(text)
		if m == nil {
			return nil, fmt.Errorf("line %d: expected key: value, got %q", p.i+1, text)
		}
		key := m[1]
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("line %d: duplicate key %q", p.i+1, key)
		}
		rest := strings.TrimSpace(stripComment(text[len(m[0]):]))
		p.i++
		var v any
		var err error
		switch {
		case rest == "":
			p.skipBlank()
			if p.i < len(p.lines) && (indentOf(p.lines[p.i]) > indent || indentOf(p.lines[p.i]) == indent && isItem(p.lines[p.i])) {
				v, err = p.node(indentOf(p.lines[p.i]))
			}
		case rest[0] == '|' || rest[0] == '>':
			v = p.block(indent, rest)
		default:
			v, err = scalar(rest)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", p.i, err)
		}
		out[key] = v
	}
	if p.i < len(p.lines) && indentOf(p.lines[p.i]) > indent {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.i+1)
	}
	return out, nil
}

// block reads a | or > scalar whose key sits at indent.
func (p *yamlParser) block(indent int, header string) string {
	var lines []string
	blockIndent := -1
	for ; p.i < len(p.lines); p.i++ {
		line := p.lines[p.i]
		if strings.TrimSpace(line) == "" {
			lines = append(lines, "")
			continue
		}
		if indentOf(line) <= indent {
			break
		}
		if blockIndent < 0 {
			blockIndent = indentOf(line)
		}
		lines = append(lines, line[min(blockIndent, indentOf(line)):])
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	sep := "\n"
	if header[0] == '>' {
		sep = " "
	}
	s := strings.Join(lines, sep)
	if !strings.HasSuffix(header, "-") {
		s += "\n"
	}
	return s
}

func scalar(s string) (any, error) {
	switch {
	case s == "[]":
		return []any{}, nil
	case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
		out := map[string]any{}
		for _, kv := range splitFlow(s[1 : len(s)-1]) {
			k, v, ok := strings.Cut(kv, ":")
			if !ok {
				return nil, fmt.Errorf("flow mapping entry %q", kv)
			}
			val, err := scalar(strings.TrimSpace(v))
			if err != nil {
				return nil, err
			}
			out[strings.TrimSpace(k)] = val
		}
		return out, nil
	case strings.HasPrefix(s, "[") || strings.HasPrefix(s, "&") || strings.HasPrefix(s, "*"):
		return nil, fmt.Errorf("unsupported YAML %q", s)
	case strings.HasPrefix(s, `"`):
		return strconv.Unquote(s)
	case strings.HasPrefix(s, "'"):
		if len(s) < 2 || !strings.HasSuffix(s, "'") {
			return nil, fmt.Errorf("unclosed quote in %q", s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	}
	return s, nil
}

// splitFlow splits "a: 1, b: "x, y"" at the commas outside quotes.
func splitFlow(s string) []string {
	var out []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if strings.TrimSpace(s[start:]) != "" {
		out = append(out, s[start:])
	}
	return out
}

// stripComment cuts a # comment that is outside quotes and starts the line or follows a space.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

// ---------------------------------------------------------------- small helpers

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func set(words ...string) map[string]bool {
	m := map[string]bool{}
	for _, w := range words {
		m[w] = true
	}
	return m
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
