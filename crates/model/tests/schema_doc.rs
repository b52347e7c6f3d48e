//! docs/snapshot-schema.json must describe the types as they are. After changing the model, run
//! `UPDATE_SCHEMA=1 cargo test -p hangscope-model --test schema_doc` and commit the file.

#[test]
fn docs_schema_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/snapshot-schema.json"
    );
    let generated = hangscope_model::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/snapshot-schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p hangscope-model --test schema_doc"
    );
}
