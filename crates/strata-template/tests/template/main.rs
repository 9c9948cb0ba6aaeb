//! Tables of templates and what they print or fail with. The expected outputs were taken
//! from docker 20.10 (`docker images --format`, `docker image inspect --format`) on the
//! same data, except where a row says otherwise.

use serde_json::{Value, json};
use strata_template::{Functions, MissingKey, Options, Root, Schema, TabWriter, Template};

/// An `images` row as docker's formatter has it.
fn row() -> Value {
    json!({
        "Containers": "N/A", "CreatedAt": "2026-12-02 02:59:24 +0000 UTC", "CreatedSince": "2 minutes ago",
        "Digest": "<none>", "ID": "dd0da221ad19", "Repository": "fmtx-probe", "SharedSize": "N/A",
        "Size": "3B", "Tag": "1", "UniqueSize": "N/A", "VirtualSize": "3B"
    })
}

fn row_schema() -> Schema {
    Schema { root: Root::Row { type_name: "*formatter.imageContext".into() }, ..Schema::default() }
}

/// An image inspect document, as docker's API gives it.
fn inspect() -> Value {
    json!({
        "Id": "sha256:dd0da221ad1979d663983bb9a2354781f8649354a0f1d077032d3d12b66a2493",
        "RepoTags": ["fmtx-probe:1", "fmtx-probe:2"],
        "RepoDigests": [],
        "Parent": "",
        "Comment": "Imported from -",
        "Config": {
            "Env": ["X=1"], "Cmd": null, "Entrypoint": null, "Labels": {"a": "b"},
            "ExposedPorts": null, "Healthcheck": null, "WorkingDir": ""
        },
        "Size": 3,
        "RootFS": {"Type": "layers", "Layers": ["sha256:4a7ac036bf6d55a4c1e3a352c9070aa946e59ab12cb99f394fc6499dc2c36b04"]},
        "GraphDriver": {"Name": "vfs", "Data": {}}
    })
}

fn inspect_schema() -> Schema {
    Schema {
        root: Root::Struct,
        maps: ["Labels", "ExposedPorts", "Volumes", "Data"].map(String::from).to_vec(),
        slices: ["RepoTags", "RepoDigests", "Env", "Cmd", "Entrypoint", "Layers"].map(String::from).to_vec(),
    }
}

fn run(template: &str, data: &Value, schema: &Schema, options: Options) -> Result<String, String> {
    let t = Template::parse(template).map_err(|e| e.to_string())?;
    t.execute(data, schema, options).map_err(|e| e.to_string())
}

fn check(cases: &[(&str, &str)], data: &Value, schema: &Schema, options: Options) {
    let mut failed = Vec::new();
    for (template, want) in cases {
        let got = run(template, data, schema, options);
        let got = got.unwrap_or_else(|e| format!("ERROR {e}"));
        if got != *want {
            failed.push(format!("{template:?}\n   want {want:?}\n   got  {got:?}"));
        }
    }
    assert!(failed.is_empty(), "{} of {} cases failed:\n{}", failed.len(), cases.len(), failed.join("\n"));
}

#[test]
fn grammar_on_a_row() {
    check(
        &[
            ("{{.Repository}}\t{{.Tag}}", "fmtx-probe\t1"),
            ("{{- .Tag -}}  x  {{- .Tag}}", "1x1"),
            ("a  {{- /* comment */ -}}  b", "ab"),
            ("{{/* c */}}{{.Tag}}", "1"),
            ("{{$x := .Tag}}{{$x}}{{$x = \"z\"}}{{$x}}", "1z"),
            ("{{if eq .Tag \"1\"}}one{{else if eq .Tag \"2\"}}two{{end}}", "one"),
            ("{{if eq .Tag \"2\"}}two{{else if eq .Tag \"1\"}}one{{else}}?{{end}}", "one"),
            ("{{with .Tag}}[{{.}}]{{end}}", "[1]"),
            ("{{with .Digest}}{{.}}{{else}}none{{end}}", "<none>"),
            ("{{range split .Repository \"-\"}}<{{.}}>{{end}}", "<fmtx><probe>"),
            ("{{range $i, $p := split .Repository \"-\"}}{{$i}}={{$p}};{{end}}", "0=fmtx;1=probe;"),
            ("{{range split .Repository \"-\"}}{{if eq . \"probe\"}}{{break}}{{end}}{{.}}{{end}}", "fmtx"),
            ("{{range split .Repository \"-\"}}{{if eq . \"fmtx\"}}{{continue}}{{end}}{{.}}{{end}}", "probe"),
            ("{{range split \"\" \",\"}}[{{.}}]{{else}}empty{{end}}", "[]"),
            ("{{.Tag | printf \"%s!\"}}", "1!"),
            ("{{\"abc\" | len}}", "3"),
            ("{{(split .Repository \"-\") | len}}", "2"),
            (
                "{{$}}",
                "map[Containers:N/A CreatedAt:2026-12-02 02:59:24 +0000 UTC CreatedSince:2 minutes ago Digest:<none> ID:dd0da221ad19 Repository:fmtx-probe SharedSize:N/A Size:3B Tag:1 UniqueSize:N/A VirtualSize:3B]",
            ),
            ("{{-3}} {{ 0x1F }} {{ 1e3 }} {{ 010 }} {{ 'a' }} {{ 1_000 }} {{ 1.5 }}", "-3 31 1000 8 97 1000 1.5"),
            ("{{\"a\\tb\\u00e9\"}}", "a\tbé"),
            ("{{`raw\\n`}}", "raw\\n"),
            ("{{define \"x\"}}X{{.}}{{end}}{{template \"x\" .Tag}}", "X1"),
            ("{{block \"b\" .Tag}}[{{.}}]{{end}}", "[1]"),
            ("{{range 3}}{{.}}{{end}}", "012"),
            ("{{true}} {{false}} {{not true}}", "true false false"),
        ],
        &row(),
        &row_schema(),
        Options::default(),
    );
}

#[test]
fn functions_on_a_row() {
    check(
        &[
            ("{{upper .Repository}}|{{lower \"ABC\"}}|{{title .Repository}}", "FMTX-PROBE|abc|Fmtx-Probe"),
            ("{{title \"hello wide_world x.y\"}}", "Hello Wide_world X.Y"),
            ("{{split .Repository \"-\"}}", "[fmtx probe]"),
            ("{{join (split .Repository \"-\") \"+\"}}", "fmtx+probe"),
            ("{{pad .Tag 1 2}}|{{pad \"\" 1 2}}|{{truncate .Repository 3}}|{{truncate .Tag 5}}", " 1  ||fmt|1"),
            ("{{json .ID}}", "\"dd0da221ad19\""),
            (
                "{{json .}}",
                r#"{"Containers":"N/A","CreatedAt":"2026-12-02 02:59:24 +0000 UTC","CreatedSince":"2 minutes ago","Digest":"\u003cnone\u003e","ID":"dd0da221ad19","Repository":"fmtx-probe","SharedSize":"N/A","Size":"3B","Tag":"1","UniqueSize":"N/A","VirtualSize":"3B"}"#,
            ),
            ("{{json .Digest}}", "\"<none>\""),
            ("{{printf \"%-12s|%5s|%q|%v|%d\" .Repository .Tag .Tag .Tag 5}}", "fmtx-probe  |    1|\"1\"|1|5"),
            ("{{println .Tag}}", "1\n"),
            ("{{println 1 \"a\" \"b\" 2}}", "1 a b 2\n"),
            ("{{print 1 2 \"a\" \"b\" 3}}", "1 2ab3"),
            ("{{print \"a\" 1 2 \"b\"}}", "a1 2b"),
            ("{{len .Repository}}|{{index .Repository 1}}|{{slice .Repository 1 3}}", "10|109|mt"),
            ("{{html \"<a>\"}}{{js \"a'b\"}}{{urlquery \"a b&\"}}", "&lt;a&gt;a\\'ba+b%26"),
            ("{{eq .Tag \"1\" \"2\"}} {{eq .Tag \"2\" \"3\"}} {{ne \"a\" \"b\"}}", "true false true"),
            ("{{lt 1 2}}{{le 2 2}}{{gt 3 1}}{{ge 1 2}}{{lt \"a\" \"b\"}}", "truetruetruefalsetrue"),
            ("{{and \"\" \"x\"}}|{{or \"\" \"y\"}}|{{not \"\"}}|{{and 1 0 2}}|{{or 0 \"\" 3}}", "|y|true|0|3"),
            ("{{or .Tag (index .Repository 99)}}", "1"),
        ],
        &row(),
        &row_schema(),
        Options::default(),
    );
}

#[test]
fn printf_verbs() {
    check(
        &[
            (
                "{{printf \"%s|%v|%q|%x|%X|% x\" \"hi\" \"hi\" \"hi\" \"hi\" \"hi\" \"hi\"}}",
                "hi|hi|\"hi\"|6869|6869|68 69",
            ),
            (
                "{{printf \"%d|%5d|%-5d|%05d|%+d|%x|%#x|%o|%b|%c|%U\" 42 42 42 42 42 255 255 8 5 65 65}}",
                "42|   42|42   |00042|+42|ff|0xff|10|101|A|U+0041",
            ),
            (
                "{{printf \"%f|%.2f|%5.1f|%e|%g|%v\" 1.5 2.34567 2.25 1000.0 0.00001 1e6}}",
                "1.500000|2.35|  2.2|1.000000e+03|1e-05|1e+06",
            ),
            ("{{printf \"%t|%v|%5t\" true false true}}", "true|false| true"),
            ("{{printf \"%-10s|%10s|%.2s\" \"ab\" \"ab\" \"abc\"}}", "ab        |        ab|ab"),
            ("{{printf \"%d\" \"x\"}}", "%!d(string=x)"),
            ("{{printf \"%s\" 1}}", "%!s(int=1)"),
            ("{{printf \"%s\"}}", "%!s(MISSING)"),
            ("{{printf \"%d %d\" 1}}", "1 %!d(MISSING)"),
            ("{{printf \"%s\" 1 2}}", "%!s(int=1)%!(EXTRA int=2)"),
            ("{{printf \"100%%\"}}", "100%"),
            ("{{printf \"%\"}}", "%!(NOVERB)"),
            ("{{printf \"%v\" nil}}|{{printf \"%d\" nil}}", "<nil>|%!d(<nil>)"),
            ("{{printf \"%T %T %T %T\" 1 \"a\" 1.5 true}}", "int string float64 bool"),
            ("{{printf \"%*d|%-*d|%.*f\" 4 7 4 7 1 2.25}}", "   7|7   |2.2"),
            ("{{printf \"%q\" (split \"a,b\" \",\")}}", "[\"a\" \"b\"]"),
        ],
        &row(),
        &row_schema(),
        Options::default(),
    );
}

#[test]
fn inspect_documents() {
    check(
        &[
            ("{{.Config.Labels.nope}}", "<no value>"),
            ("{{.Config.Labels}}", "map[a:b]"),
            ("{{.Config.Labels.a}}", "b"),
            ("{{.Config.Env}}", "[X=1]"),
            ("{{json .Config.Env}}", "[\"X=1\"]"),
            ("{{.Config.Cmd}}|{{json .Config.Cmd}}", "[]|null"),
            ("{{.Config.ExposedPorts}}", "map[]"),
            ("{{.Config.Healthcheck}}|{{json .Config.Healthcheck}}", "<nil>|null"),
            ("{{index .Config.Labels \"a\"}}|{{index .Config.Labels \"zz\"}}", "b|"),
            ("{{index .RepoTags 1}}|{{index .Config.Env 0}}", "fmtx-probe:2|X=1"),
            ("{{len .RootFS.Layers}}", "1"),
            ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a=b;"),
            ("{{range .RepoTags}}{{.}},{{else}}none{{end}}", "fmtx-probe:1,fmtx-probe:2,"),
            ("{{range $i, $t := .RepoTags}}{{$i}}={{$t}} {{end}}", "0=fmtx-probe:1 1=fmtx-probe:2 "),
            ("{{range .Config.Cmd}}x{{else}}empty{{end}}", "empty"),
            ("{{with .Config.Cmd}}c{{else}}nocmd{{end}}", "nocmd"),
            ("{{if .Config.Entrypoint}}y{{else}}n{{end}}", "n"),
            ("{{not .Config.Cmd}}", "true"),
            ("{{ .Id | printf \"%.19s\" }}", "sha256:dd0da221ad19"),
            (
                "{{printf \"%v %v\" .Config.Labels .RootFS.Layers}}",
                "map[a:b] [sha256:4a7ac036bf6d55a4c1e3a352c9070aa946e59ab12cb99f394fc6499dc2c36b04]",
            ),
            ("{{printf \"%q\" .Config.Env}}", "[\"X=1\"]"),
            ("{{eq .Size 3}} {{gt .Size 2}} {{.Size}}", "true true 3"),
            ("{{.Size | printf \"%d\" | len}}", "1"),
            ("{{slice .RepoTags 1}}", "[fmtx-probe:2]"),
            ("{{range $i, $e := .RepoTags}}{{if $i}},{{end}}{{$e}}{{end}}", "fmtx-probe:1,fmtx-probe:2"),
            ("{{$.Size}} {{(index .RepoTags 0)}}", "3 fmtx-probe:1"),
            (
                "{{.RootFS}}",
                "map[Layers:[sha256:4a7ac036bf6d55a4c1e3a352c9070aa946e59ab12cb99f394fc6499dc2c36b04] Type:layers]",
            ),
            ("{{json .Config.Labels}}", "{\"a\":\"b\"}"),
            ("{{join .RepoTags \", \"}}", "fmtx-probe:1, fmtx-probe:2"),
        ],
        &inspect(),
        &inspect_schema(),
        Options::default(),
    );
}

#[test]
fn raw_json_fallback_semantics() {
    // What docker's inspect does when the typed template fails: JSON as Go maps, a missing
    // key is an error, null is "no value".
    let opts = Options { missing_key: MissingKey::Error, ..Options::default() };
    check(
        &[
            ("{{index .Config \"Cmd\"}}|{{index .Config \"Env\"}}", "<no value>|[X=1]"),
            ("{{.Config.Cmd}}{{.Size}}", "<no value>3"),
            ("{{len .Config}}", "7"),
            ("{{.Nope}}", "ERROR template: :1:2: executing \"\" at <.Nope>: map has no entry for key \"Nope\""),
            (
                "{{.Config.Nope}}",
                "ERROR template: :1:9: executing \"\" at <.Config.Nope>: map has no entry for key \"Nope\"",
            ),
            (
                "{{.Nope.Deeper}}",
                "ERROR template: :1:7: executing \"\" at <.Nope.Deeper>: map has no entry for key \"Nope\"",
            ),
        ],
        &inspect(),
        &Schema::default(),
        opts,
    );
}

#[test]
fn errors_say_what_and_where() {
    check(
        &[
            (
                "{{.Nope}}",
                "ERROR template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.imageContext",
            ),
            (
                "{{.ID.Nope}}",
                "ERROR template: :1:5: executing \"\" at <.ID.Nope>: can't evaluate field Nope in type string",
            ),
            ("{{ .Tag }", "ERROR template: :1: unexpected \"}\" in operand"),
            ("{{nofunc}}", "ERROR template: :1: function \"nofunc\" not defined"),
            ("{{.Tag", "ERROR template: :1: unclosed action"),
            ("{{end}}", "ERROR template: :1: unexpected {{end}}"),
            ("{{if .Tag}}", "ERROR template: :1: unexpected EOF"),
            ("{{$y}}", "ERROR template: :1: undefined variable \"$y\""),
            ("{{len 3}}", "ERROR template: :1:2: executing \"\" at <len 3>: error calling len: len of type int"),
            (
                "{{gt 1.5 1}}",
                "ERROR template: :1:2: executing \"\" at <gt 1.5 1>: error calling gt: incompatible types for comparison",
            ),
            (
                "{{eq 1 1.0}}",
                "ERROR template: :1:2: executing \"\" at <eq 1 1.0>: error calling eq: incompatible types for comparison",
            ),
            ("{{nil}}", "ERROR template: :1:2: executing \"\" at <nil>: nil is not a command"),
            (
                "{{template \"x\"}}",
                "ERROR template: :1:11: executing \"\" at <{{template \"x\"}}>: template \"x\" not defined",
            ),
            (
                "{{(split .Repository \"-\").x}}",
                "ERROR template: :1:21: executing \"\" at <\"-\">: can't evaluate field x in type []string",
            ),
            (
                "{{index (split .Tag \",\") 5}}",
                "ERROR template: :1:2: executing \"\" at <index (split .Tag \",\") 5>: error calling index: index out of range: 5",
            ),
            ("{{upper 3}}", "ERROR template: :1:8: executing \"\" at <3>: expected string; found 3"),
            (
                "{{upper .Nope}}",
                "ERROR template: :1:8: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.imageContext",
            ),
            (
                "{{.Tag 1}}",
                "ERROR template: :1:2: executing \"\" at <.Tag>: wrong number of args for Tag: want 0 got 1",
            ),
            (
                "{{upper}}",
                "ERROR template: :1:2: executing \"\" at <upper>: wrong number of args for upper: want 1 got 0",
            ),
            (
                "{{\"x\" 1}}",
                "ERROR template: :1:2: executing \"\" at <\"x\">: can't give argument to non-function \"x\"",
            ),
            ("{{.Tag | 3}}", "ERROR template: :1: non executable command in pipeline stage 2"),
            ("{{range .Tag}}{{end}}", "ERROR template: :1:8: executing \"\" at <.Tag>: range can't iterate over 1"),
            ("{{break}}", "ERROR template: :1: {{break}} outside {{range}}"),
            (
                "a\n{{.Tag}}\n{{.Nope}}",
                "ERROR template: :3:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.imageContext",
            ),
            (
                "{{define \"x\"}}{{.Nope}}{{end}}{{template \"x\" .}}",
                "ERROR template: :1:16: executing \"x\" at <.Nope>: can't evaluate field Nope in type *formatter.imageContext",
            ),
            (
                "{{define \"r\"}}{{template \"r\" .}}{{end}}{{template \"r\" .}}",
                "ERROR template: :1:25: executing \"r\" at <{{template \"r\" .}}>: exceeded maximum template depth (100)",
            ),
        ],
        &row(),
        &row_schema(),
        Options::default(),
    );
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!("{{{{{}1{}}}}}", "(".repeat(150), ")".repeat(150));
    let err = Template::parse(&deep).unwrap_err();
    assert_eq!(err.to_string(), "template: :1: nesting deeper than 100 levels");
    let ifs = format!("{}x{}", "{{if 1}}".repeat(150), "{{end}}".repeat(150));
    assert!(Template::parse(&ifs).is_err());
    let ok = format!("{{{{{}1{}}}}}", "(".repeat(50), ")".repeat(50));
    assert_eq!(run(&ok, &row(), &row_schema(), Options::default()).unwrap(), "1");
}

#[test]
fn table_headers_use_docker_stand_ins() {
    // docker renders a table's header by running the template on the header names with
    // json/split/join/title/lower/upper/truncate returning their argument.
    let header = json!({"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Size": "SIZE"});
    let opts = Options { functions: Functions::DockerHeader, ..Options::default() };
    check(
        &[
            ("{{.ID}}: {{.Size}}", "IMAGE ID: SIZE"),
            ("{{upper .Repository}}\t{{lower .Tag}}|{{json .ID}}", "REPOSITORY\tTAG|IMAGE ID"),
            ("{{pad .Tag 1 2}}|{{truncate .Repository 3}}|{{title .Repository}}", " TAG  |REPOSITORY|REPOSITORY"),
            ("{{join (split .Repository \"-\") \"+\"}}", "REPOSITORY"),
            ("{{.Nope}}", "<no value>"),
        ],
        &header,
        &Schema::default(),
        opts,
    );
}

#[test]
fn tables_align_like_docker() {
    let mut w = TabWriter::new(10, 3);
    w.write("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n");
    w.write("fmtx-probe\t1\tdd0da221ad19\t2 minutes ago\t3B\n");
    w.write("a\t\tdd0da221ad19\t\t3B\n");
    assert_eq!(
        w.finish(),
        "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\n\
         fmtx-probe   1         dd0da221ad19   2 minutes ago   3B\n\
         a                      dd0da221ad19                   3B\n"
    );
}

#[test]
fn partial_output_stays_on_error() {
    let t = Template::parse("a{{.Tag}}b{{.Nope}}c").unwrap();
    let mut out = String::new();
    assert!(t.execute_into(&mut out, &row(), &row_schema(), Options::default()).is_err());
    assert_eq!(out, "a1b");
}
