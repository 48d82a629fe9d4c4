//! CSV imports of exports as CRMs write them, over real HTTP: `;`-separated files, HubSpot's
//! `Record ID`, times without an offset or written day first, in the time zone the query gives;
//! and a clear `400 invalid_query` naming the parameter for anything the import cannot follow.

use crate::common::*;

/// Reads `[lead] created_at` from `signup_date`; page views count one point each.
const MODEL: &str = r#"
[lead]
created_at = "signup_date"
[scores.activity]
[[scores.activity.rules]]
name = "views"
event = "page_view"
points = 1
"#;

/// A server with workspace `crm` running MODEL; returns (server, admin key, read key).
fn crm(dir: &std::path::Path) -> (Server, String, String) {
    let admin = create_key(dir, "crm", "admin");
    let read = create_key(dir, "crm", "read");
    let server = Server::start(dir, &[]);
    let uploaded = server.post_text("/api/models", &admin, MODEL);
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    (server, admin, read)
}

#[test]
fn times_are_read_in_the_format_and_time_zone_the_query_gives() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, read) = crm(dir.path());
    let paris_dmy = "time_format=dmy&time_zone=Europe/Paris";

    // A `;`-separated export whose creation dates are day first, in Paris time (UTC+2 in October
    // until the 25th): both `created_at` and the model's `signup_date` are stored as RFC 3339. A
    // signup date that is no time is a bad row, since the model reads it; `created_at`, which it
    // does not read, is kept as written.
    let leads = "Record ID;Email;Create Date;Signup Date\n\
                 101;ana@acme.io;20/10/2026 10:00;21/10/2026\n\
                 102;bo@beta.io;not recorded;22/10/2026\n\
                 103;cy@gamma.io;;never\n";
    let imported = server.post_text(&format!("/api/import/leads?{paris_dmy}"), &admin, leads);
    assert_eq!(imported.status, 200, "{}", imported.body);
    let imported = imported.json();
    assert_eq!((imported["imported"].as_i64(), imported["skipped"].as_i64()), (Some(2), Some(1)), "{imported}");
    assert_eq!(imported["problems"][0]["line"], 4);
    let reason = imported["problems"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("`signup_date`: `never` is not a time in the format dmy"), "{reason}");
    let ana = server.get("/api/leads/101", &read).json();
    assert_eq!(ana["attributes"]["created_at"], "2026-10-20T08:00:00Z", "{ana}");
    assert_eq!(ana["attributes"]["signup_date"], "2026-10-20T22:00:00Z", "{ana}");
    let bo = server.get("/api/leads/102", &read).json();
    assert_eq!(bo["attributes"]["created_at"], "not recorded", "{bo}");
    assert_eq!(bo["attributes"]["signup_date"], "2026-10-21T22:00:00Z", "{bo}");

    // Activity of the same export: 00:30 on 31 October in Paris (UTC+1 by then).
    let events = "Record ID;Activity Type;Activity Date\n101;page_view;31/10/2026 00:30\n";
    let imported = server.post_text(&format!("/api/import/events?{paris_dmy}"), &admin, events).json();
    assert_eq!(imported["imported"], 1, "{imported}");
    assert_eq!(server.get("/api/leads/101", &read).json()["last_event_at"], "2026-10-30T23:30:00Z");

    // Without the format, a date with slashes is a bad row saying what to do.
    let imported = server.post_text("/api/import/events", &admin, events).json();
    assert_eq!((imported["imported"].as_i64(), imported["skipped"].as_i64()), (Some(0), Some(1)), "{imported}");
    let reason = imported["problems"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("is the day or the month first? Say so with the time format dmy or mdy"), "{reason}");

    // A CRM's `2026-10-31 00:30:00` and a date alone, in UTC by default.
    let events = "lead_id,type,ts\n103,page_view,2026-10-31 00:30:00\n104,page_view,2026-10-31\n";
    let imported = server.post_text("/api/import/events", &admin, events).json();
    assert_eq!(imported["imported"], 2, "{imported}");
    assert_eq!(server.get("/api/leads/103", &read).json()["last_event_at"], "2026-10-31T00:30:00Z");
    assert_eq!(server.get("/api/leads/104", &read).json()["last_event_at"], "2026-10-31T00:00:00Z");

    // A strftime pattern, and an offset as the time zone.
    let events = "lead_id,type,ts\n105,page_view,31.10.2026 00h30\n";
    let imported = server.post_text(
        "/api/import/events?time_format=%25d.%25m.%25Y%20%25Hh%25M&time_zone=%2B05:00",
        &admin,
        events,
    );
    assert_eq!(imported.json()["imported"], 1, "{}", imported.body);
    assert_eq!(server.get("/api/leads/105", &read).json()["last_event_at"], "2026-10-30T19:30:00Z");
}

#[test]
fn what_the_import_cannot_follow_is_invalid_query_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, _) = crm(dir.path());
    let leads = "lead_id,email\n1,a@b.c\n";
    let events = "lead_id,type,ts\n1,page_view,2026-10-31T00:00:00Z\n";
    for (path, body, message) in [
        (
            "/api/import/events?time_format=european",
            events,
            "`time_format`: `european` is not a time format: use iso (the default), dmy",
        ),
        ("/api/import/events?time_format=%25H:%25M", events, "`time_format`: `%H:%M` is not a usable time pattern"),
        ("/api/import/events?time_zone=Mars/Olympus", events, "`time_zone`: `Mars/Olympus` is not a time zone"),
        ("/api/import/leads?time_zone=Europe/Pariss", leads, "`time_zone`: `Europe/Pariss` is not a time zone"),
        ("/api/import/events?time_fromat=dmy", events, "unknown parameter `time_fromat`: use `lead`, `type`"),
        ("/api/import/events?map.url=page", events, "unknown parameter `map.url`"),
        ("/api/import/leads?id=Record%20ID", leads, "`id`: the file has no column `Record ID`"),
        ("/api/import/leads?map.Title=job_title", leads, "`map.Title`: the file has no column `Title`"),
        ("/api/import/events?time=when", events, "`time`: the file has no column `when`"),
        ("/api/import/leads?map.email=", leads, "`map.email`: name the attribute the column becomes"),
        ("/api/import/leads?map.=email", leads, "`map.`: name the column after `map.`"),
    ] {
        let answer = server.post_text(path, &admin, body);
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        let answer = answer.json();
        assert_eq!(answer["code"], "invalid_query", "{path}: {answer}");
        let got = answer["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{path}: {got}");
    }
}

#[test]
fn a_file_ingested_in_lead_order_counts_the_first_line_of_an_event_id_and_scores_every_lead() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, read) = crm(dir.path());
    // More rows than one writer job takes (1,000), leads out of order and interleaved, so that
    // the rows are regrouped by lead across several jobs in flight. Event `dup` comes first on
    // lead `z`, then on lead `a`, whose id sorts first: the file's first line counts.
    let mut csv = String::from("event_id,lead_id,type,ts\ndup,z,page_view,2026-10-01T00:00:00Z\n");
    for i in 0..2_600 {
        let lead = ["m", "b", "z", "a"][i % 4];
        csv.push_str(&format!("e{i},{lead},page_view,2026-10-02T00:00:00Z\n"));
    }
    csv.push_str("dup,a,page_view,2026-10-01T00:00:00Z\n");
    let imported = server.post_text("/api/import/events", &admin, &csv);
    assert_eq!(imported.status, 200, "{}", imported.body);
    let imported = imported.json();
    assert_eq!((imported["imported"].as_i64(), imported["duplicates"].as_i64()), (Some(2_601), Some(1)), "{imported}");
    for (lead, views) in [("a", 650), ("b", 650), ("m", 650), ("z", 651)] {
        let lead = server.get(&format!("/api/leads/{lead}"), &read).json();
        assert_eq!(lead["scores"]["activity"]["value"], views as f64, "{lead}");
    }
    // The same file again: every row is a duplicate.
    let again = server.post_text("/api/import/events", &admin, &csv).json();
    assert_eq!((again["imported"].as_i64(), again["duplicates"].as_i64()), (Some(0), Some(2_602)), "{again}");
}
