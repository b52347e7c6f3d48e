//! docs/snapshot-schema.json must describe the types as they are, and describe every field:
//! what it is, and for one added after 1.0 the version that added it. After changing the model,
//! run `UPDATE_SCHEMA=1 cargo test -p hangscope-model --test schema_doc` and commit the files.
//!
//! `schema_fields.txt` records the version that added each field (`Type.field 1.N`), worked out
//! from the schema at each version bump in git history. A field it does not list is new: its
//! description (or its type's, or its enum variant's) must say "since" the current version.
//! `UPDATE_SCHEMA=1` adds such fields to the list, so they are checked against that version
//! from then on.

use std::collections::BTreeMap;

use serde_json::Value;

const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/snapshot-schema.json"
);
const FIELDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schema_fields.txt");
const MARKDOWN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/snapshot-schema.md");
/// docs/snapshot-schema.md from this line on is made from the schema; above it, written by hand.
const GENERATED: &str = "<!-- Generated from snapshot-schema.json by crates/model/tests/schema_doc.rs \
                         (UPDATE_SCHEMA=1): edit the doc comments in crates/model, not this. -->";

#[test]
fn docs_schema_is_current() {
    let generated = hangscope_model::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(SCHEMA, &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(SCHEMA).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/snapshot-schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p hangscope-model --test schema_doc"
    );
}

/// One property of one type, with what may describe it.
struct Field {
    ty: String,
    name: String,
    own: String,
    /// The description of the enum variant holding it, when it is in one.
    variant: String,
    /// A serde tag (`"kind": {"const": "root"}`): its variant's description says what it is.
    tag: bool,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn collect(ty: &str, node: &Value, variant: &str, out: &mut Vec<Field>) {
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            out.push(Field {
                ty: ty.to_string(),
                name: name.clone(),
                own: text(prop, "description"),
                variant: variant.to_string(),
                tag: prop.get("const").is_some(),
            });
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for sub in node
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let desc = text(sub, "description");
            let variant = if desc.is_empty() { variant } else { &desc };
            collect(ty, sub, variant, out);
        }
    }
}

/// The versions a text names as "since 1.N".
fn sinces(s: &str) -> Vec<String> {
    // Doc comments wrap lines anywhere, "since" and its version included.
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.match_indices("since ")
        .filter_map(|(i, m)| {
            let rest = &s[i + m.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let v = rest[..end].trim_end_matches('.');
            (v.contains('.') && v.len() >= 3).then(|| v.to_string())
        })
        .collect()
}

fn fields(schema: &Value) -> (Vec<Field>, BTreeMap<String, String>) {
    let mut out = Vec::new();
    let mut type_desc = BTreeMap::new();
    type_desc.insert("Document".to_string(), text(schema, "description"));
    collect("Document", schema, "", &mut out);
    if let Some(defs) = schema.get("$defs").and_then(Value::as_object) {
        for (name, def) in defs {
            type_desc.insert(name.clone(), text(def, "description"));
            collect(name, def, "", &mut out);
        }
    }
    (out, type_desc)
}

fn read_versions() -> BTreeMap<String, String> {
    std::fs::read_to_string(FIELDS)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (field, version) = l.split_once(' ')?;
            Some((field.to_string(), version.trim().to_string()))
        })
        .collect()
}

#[test]
fn every_field_is_described_with_its_version() {
    let schema: Value = serde_json::from_str(&hangscope_model::json_schema()).unwrap();
    let (fields, type_desc) = fields(&schema);
    let mut versions = read_versions();
    let current = hangscope_model::SCHEMA_VERSION;
    let mut problems = Vec::new();
    let mut added = Vec::new();
    for f in &fields {
        let key = format!("{}.{}", f.ty, f.name);
        let where_ = format!("field `{}` of type `{}`", f.name, f.ty);
        // A serde tag has no doc comment of its own: its variant's says what it means.
        let described_by_variant = f.tag && !f.variant.trim().is_empty();
        if f.own.trim().is_empty() && !described_by_variant {
            problems.push(format!(
                "{where_} has no description: give it a doc comment (what it is, its unit, \
                 where it comes from, when it is absent)"
            ));
        }
        let since = versions.get(&key).cloned().unwrap_or_else(|| {
            added.push(key.clone());
            current.to_string()
        });
        if since == "1.0" {
            continue;
        }
        let ty = type_desc.get(&f.ty).map(String::as_str).unwrap_or_default();
        let said: Vec<String> = [f.own.as_str(), f.variant.as_str(), ty]
            .iter()
            .flat_map(|s| sinces(s))
            .collect();
        if !said.contains(&since) {
            let new = if versions.contains_key(&key) {
                ""
            } else {
                " (it is not in crates/model/tests/schema_fields.txt, so it is new in this version)"
            };
            problems.push(format!(
                "{where_} was added in {since}{new}, but neither its description, its enum \
                 variant's, nor its type's says \"(since {since})\""
            ));
        }
    }
    if problems.is_empty() && !added.is_empty() && std::env::var_os("UPDATE_SCHEMA").is_some() {
        for key in added {
            versions.insert(key, current.to_string());
        }
        let mut file = String::from(
            "# The schema version that added each field of docs/snapshot-schema.json, as\n\
             # `Type.field VERSION`; checked by tests/schema_doc.rs, extended by UPDATE_SCHEMA=1.\n",
        );
        for (k, v) in &versions {
            file.push_str(&format!("{k} {v}\n"));
        }
        std::fs::write(FIELDS, file).unwrap();
    }
    assert!(
        problems.is_empty(),
        "{} schema field(s) not described as docs/snapshot-schema.md promises:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn since_reads_versions() {
    assert_eq!(
        sinces("The port (since 1.6; set since 1.7)."),
        ["1.6", "1.7"]
    );
    assert_eq!(sinces("a hop (since 1.5, with its fields)"), ["1.5"]);
    assert_eq!(sinces("its fields (since\n1.5)."), ["1.5"]);
    assert!(sinces("seconds since the epoch").is_empty());
}

/// One line of a type's description or a table cell: the doc comment's lines joined.
fn one_line(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The JSON type of a property, in a few words: `string`, `[Frame]`, `Cause or null`.
fn type_words(v: &Value) -> String {
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("[{name}](#{})", name.to_lowercase());
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(subs) = v.get(key).and_then(Value::as_array) {
            let words: Vec<String> = subs.iter().map(type_words).collect();
            return words.join(" or ");
        }
    }
    if let Some(c) = v.get("const") {
        return format!("`{c}`");
    }
    match v.get("type") {
        Some(Value::String(t)) if t == "array" => match v.get("items") {
            Some(items) => format!("list of {}", type_words(items)),
            None => "list".into(),
        },
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => {
            let mut names: Vec<String> = ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .map(String::from)
                .collect();
            if ts.iter().any(|t| t == "null") {
                names.push("null".into());
            }
            names.join(" or ")
        }
        _ => "any".into(),
    }
}

/// A sentence: ends with one period.
fn sentence(s: &str) -> String {
    let s = one_line(s);
    if s.is_empty() || s.ends_with('.') || s.ends_with(".)") {
        s
    } else {
        format!("{s}.")
    }
}

/// The rows of a table of `node`'s own properties, but its serde tag.
fn rows(ty: &str, node: &Value, versions: &BTreeMap<String, String>, out: &mut String) {
    let Some(props) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    let props: Vec<(&String, &Value)> = props
        .iter()
        .filter(|(_, p)| p.get("const").is_none())
        .collect();
    if props.is_empty() {
        return;
    }
    out.push_str("\n| Field | Type | Since | Description |\n|---|---|---|---|\n");
    for (name, prop) in props {
        let since = versions
            .get(&format!("{ty}.{name}"))
            .map(String::as_str)
            .unwrap_or(hangscope_model::SCHEMA_VERSION);
        out.push_str(&format!(
            "| `{name}` | {} | {since} | {} |\n",
            type_words(prop),
            one_line(&text(prop, "description"))
        ));
    }
}

/// One variant of an enum: a value, or an object told by its tag.
fn variant(ty: &str, sub: &Value, versions: &BTreeMap<String, String>, out: &mut String) {
    let desc = sentence(&text(sub, "description"));
    let tag = sub
        .get("properties")
        .and_then(Value::as_object)
        .and_then(|p| p.iter().find(|(_, v)| v.get("const").is_some()));
    let head = match (
        tag,
        sub.get("const"),
        sub.get("enum").and_then(Value::as_array),
    ) {
        (Some((name, v)), _, _) => {
            format!("`{name}`: `{}`", v["const"].as_str().unwrap_or_default())
        }
        (None, Some(c), _) => format!("`{}`", c.as_str().unwrap_or_default()),
        (None, None, Some(vals)) => vals
            .iter()
            .map(|v| format!("`{}`", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", "),
        _ => type_words(sub),
    };
    let same = sub
        .get("$ref")
        .map(|r| {
            format!(
                " With the fields of {}.",
                type_words(&serde_json::json!({ "$ref": r }))
            )
        })
        .unwrap_or_default();
    out.push_str(&format!(
        "\n- {head}{}{desc}{same}\n",
        if desc.is_empty() { "" } else { " — " }
    ));
    let mut table = String::new();
    rows(ty, sub, versions, &mut table);
    for line in table.lines().filter(|l| !l.is_empty()) {
        out.push_str(&format!("\n  {line}"));
    }
    if !table.is_empty() {
        out.push('\n');
    }
}

/// The field reference: each type, its description, and a table of its fields with the
/// version that added each.
fn markdown(schema: &Value, versions: &BTreeMap<String, String>) -> String {
    let mut out = format!(
        "{GENERATED}\n\n## Types\n\nEvery type of the document: `Document` first, then the others \
         by name. *Since* is the schema version that added the field (the list is \
         `crates/model/tests/schema_fields.txt`). A type with variants lists each, by its tag \
         (`kind: \"root\"`) or value, with the fields it adds.\n"
    );
    let mut types: Vec<(&str, &Value)> = vec![("Document", schema)];
    if let Some(defs) = schema.get("$defs").and_then(Value::as_object) {
        types.extend(defs.iter().map(|(n, d)| (n.as_str(), d)));
    }
    for (name, node) in types {
        out.push_str(&format!("\n### {name}\n"));
        let desc = sentence(&text(node, "description"));
        if !desc.is_empty() {
            out.push_str(&format!("\n{desc}\n"));
        }
        rows(name, node, versions, &mut out);
        for key in ["oneOf", "anyOf"] {
            for sub in node
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                variant(name, sub, versions, &mut out);
            }
        }
    }
    out
}

#[test]
fn docs_markdown_types_are_current() {
    let schema: Value = serde_json::from_str(&hangscope_model::json_schema()).unwrap();
    let generated = markdown(&schema, &read_versions());
    let on_disk = std::fs::read_to_string(MARKDOWN).unwrap_or_default();
    let by_hand = on_disk.split(GENERATED).next().unwrap_or_default();
    let whole = format!(
        "{}{generated}",
        by_hand.trim_end_matches('\n').to_string() + "\n\n"
    );
    if std::env::var_os("UPDATE_SCHEMA").is_some() && whole != on_disk {
        std::fs::write(MARKDOWN, &whole).unwrap();
        return;
    }
    assert!(
        whole == on_disk,
        "docs/snapshot-schema.md's types are stale: run UPDATE_SCHEMA=1 cargo test -p \
         hangscope-model --test schema_doc"
    );
}
