//! The query each dialect gets for one example model, so that a reader sees what is emitted and
//! a change to it shows in review.

use std::path::Path;

use leadscore_core::Timestamp;
use leadscore_sql::{Dialect, SqlOptions};

use crate::engines::compile;

#[test]
fn the_japan_example_in_every_dialect() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/japan-b2b.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let model = compile(&text);
    let as_of = Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap();
    for dialect in Dialect::ALL {
        let options =
            SqlOptions { dialect, leads_table: "crm.leads", events_table: "crm.events", as_of, explain: false };
        let query = leadscore_sql::compile_sql(&model, &text, &options).unwrap();
        insta::assert_snapshot!(format!("japan_b2b_{}", dialect.name()), query);
    }
}
