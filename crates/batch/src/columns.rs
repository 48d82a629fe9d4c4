//! How a CSV file's header and cells are read: the rules `leadscore score` and the service's CSV
//! import (`crates/server/src/routes/import.rs`, which depends on this crate for them) share, so
//! that the same file gives the same leads, attributes and events both ways.
//!
//! - Cells are trimmed of surrounding whitespace (an exported `" US"` is `US`); JSON values are
//!   not touched, neither here nor in the service's JSON API.
//! - The lead id, event type, time and event id columns are found by lists of names, compared
//!   without regard to case, spaces or punctuation (`Record ID`, `record_id`, `RECORD-ID`).
//! - A lead column becomes an attribute named by an explicit mapping, else by the column names
//!   of HubSpot and Salesforce exports (`Title` is `job_title`), else by its header in
//!   snake_case. Several columns becoming one attribute give it their last non-empty cell.
//! - The separator is `,`, or `;` or a tab when the header line has more of those.

use std::borrow::Cow;

/// Column names accepted for the lead id, in order of preference.
pub const LEAD_ID_COLUMNS: &[&str] =
    &["lead_id", "user_id", "userId", "id", "lead", "contact_id", "Record ID", "Contact ID", "Lead ID"];
/// Column names accepted for an event's type, in order of preference.
pub const TYPE_COLUMNS: &[&str] = &["type", "event", "event_type", "name", "Activity Type"];
/// Column names accepted for an event's time, in order of preference.
pub const TIME_COLUMNS: &[&str] = &["ts", "timestamp", "occurred_at", "time", "Activity Date"];
/// Column names accepted for an event's own id (optional; the import stores an id once).
pub const EVENT_ID_COLUMNS: &[&str] = &["event_id", "message_id", "messageId"];

/// Export column names of common CRMs and the attribute each becomes. Other columns keep their
/// header, in snake_case.
pub const KNOWN_COLUMNS: &[(&str, &str)] = &[
    // HubSpot contacts export.
    ("Record ID", "id"),
    ("Contact ID", "id"),
    ("Email", "email"),
    ("First Name", "first_name"),
    ("Last Name", "last_name"),
    ("Job Title", "job_title"),
    ("Company Name", "company"),
    ("Industry", "industry"),
    ("Number of Employees", "employees"),
    ("Country/Region", "country"),
    ("Annual Revenue", "annual_revenue"),
    ("Lifecycle Stage", "crm_lifecycle_stage"),
    ("Create Date", "created_at"),
    // Salesforce leads export (labels and API names).
    ("Lead ID", "id"),
    ("Id", "id"),
    ("Title", "job_title"),
    ("Company", "company"),
    ("NumberOfEmployees", "employees"),
    ("No. of Employees", "employees"),
    ("Country", "country"),
    ("AnnualRevenue", "annual_revenue"),
    ("LeadSource", "lead_source"),
    ("Lead Source", "lead_source"),
    ("CreatedDate", "created_at"),
    ("Created Date", "created_at"),
    ("FirstName", "first_name"),
    ("LastName", "last_name"),
    ("Rating", "crm_rating"),
];

/// `Job Title` -> `job_title`: letters and digits in lower case, every run of anything else one
/// `_`, none at either end.
pub fn snake_case(header: &str) -> String {
    let mut out = String::new();
    for c in header.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// A header cell as a column name: trimmed, without a byte-order mark.
pub fn header_name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_start_matches('\u{feff}').trim().to_string()
}

/// A cell's text: decoded (invalid UTF-8 replaced) and trimmed of surrounding whitespace.
pub fn cell(bytes: &[u8]) -> Cow<'_, str> {
    match String::from_utf8_lossy(trim_bytes(bytes)) {
        Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
        Cow::Owned(text) => Cow::Owned(text.trim().to_string()),
    }
}

/// A cell's bytes trimmed as [`cell`] trims its text, without decoding the common all-ASCII case.
pub fn trim_bytes(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.trim_ascii();
    // Only a non-ASCII byte at an edge can start or end other whitespace (a no-break space...);
    // the common case is never decoded.
    let non_ascii_edge = bytes.first().is_some_and(|b| !b.is_ascii()) || bytes.last().is_some_and(|b| !b.is_ascii());
    if non_ascii_edge && let Ok(text) = std::str::from_utf8(bytes) {
        return text.trim().as_bytes();
    }
    bytes
}

/// Whether a header names the column `name`: case, spaces and punctuation do not matter.
pub fn same_column(header: &str, name: &str) -> bool {
    snake_case(header) == snake_case(name)
}

/// The first of `names` (in their order of preference) among `header`.
pub fn find_column(header: &[String], names: &[&str]) -> Option<usize> {
    names.iter().find_map(|name| header.iter().position(|h| same_column(h, name)))
}

/// The column a query or option names (`?id=`, `?lead=`...): its exact header, else a header
/// that differs only in case, spaces and punctuation.
pub fn named_column(header: &[String], name: &str) -> Option<usize> {
    header.iter().position(|h| h == name.trim()).or_else(|| header.iter().position(|h| same_column(h, name)))
}

/// The field separator of a CSV file, from its header line: `;` or a tab when the line has more
/// of them (outside quotes) than commas, else `,`. Exports made where the comma is the decimal
/// separator use `;`.
pub fn sniff_separator(text: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &byte in text {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    if counts[1] > counts[0] && counts[1] >= counts[2] {
        b';'
    } else if counts[2] > counts[0] && counts[2] > counts[1] {
        b'\t'
    } else {
        b','
    }
}

/// A separator as people write it in a message.
pub fn separator_name(separator: u8) -> &'static str {
    match separator {
        b';' => "`;`",
        b'\t' => "a tab",
        _ => "`,`",
    }
}

/// Explicit attribute names for lead columns (`?map.HEADER=attribute`, `--map HEADER=attribute`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMap(pub Vec<(String, String)>);

impl ColumnMap {
    /// Reads `HEADER=attribute`; the attribute is kept as written.
    pub fn parse_entry(text: &str) -> Result<(String, String), String> {
        match text.rsplit_once('=') {
            Some((header, attribute)) if !header.trim().is_empty() && !attribute.trim().is_empty() => {
                Ok((header.trim().to_string(), attribute.trim().to_string()))
            }
            _ => Err(format!("`{text}` is not HEADER=ATTRIBUTE (for example `Custom Score=segment`)")),
        }
    }

    fn get(&self, header: &str) -> Option<&str> {
        self.0.iter().rev().find(|(h, _)| h == header).map(|(_, a)| a.as_str())
    }
}

/// Why a header cannot be read as leads or events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnError {
    #[error("no {what} column: name one of its columns {}", names.join(", "))]
    Missing { what: &'static str, names: &'static [&'static str] },
    #[error("no column `{0}`, which was named as the {1} column")]
    UnknownNamed(String, &'static str),
    #[error("no column `{0}`, which is mapped to an attribute")]
    UnknownMapped(String),
}

/// The attribute each column of a leads file becomes: the explicit mapping, else the CRM
/// export's name, else the header in snake_case.
pub fn attribute_names(header: &[String], mapping: &ColumnMap) -> Vec<String> {
    header
        .iter()
        .map(|h| {
            mapping
                .get(h)
                .map(str::to_string)
                .or_else(|| KNOWN_COLUMNS.iter().find(|(name, _)| same_column(h, name)).map(|(_, a)| a.to_string()))
                .unwrap_or_else(|| snake_case(h))
        })
        .collect()
}

/// The columns of a leads file: its id column and the attribute of every other column.
#[derive(Debug, Clone)]
pub struct LeadColumns {
    pub header: Vec<String>,
    pub id: usize,
    /// The attribute each column becomes (the id column's is not one: the id is the lead's own).
    pub attributes: Vec<String>,
}

impl LeadColumns {
    /// Reads a leads file's header; `id` names the id column, else it is the first of
    /// [`LEAD_ID_COLUMNS`] present.
    pub fn new(header: Vec<String>, mapping: &ColumnMap, id: Option<&str>) -> Result<LeadColumns, ColumnError> {
        if let Some((unknown, _)) = mapping.0.iter().find(|(h, _)| !header.contains(h)) {
            return Err(ColumnError::UnknownMapped(unknown.clone()));
        }
        let id = match id {
            Some(name) => {
                named_column(&header, name).ok_or_else(|| ColumnError::UnknownNamed(name.into(), "lead id"))?
            }
            None => find_column(&header, LEAD_ID_COLUMNS)
                .ok_or(ColumnError::Missing { what: "lead id", names: LEAD_ID_COLUMNS })?,
        };
        let attributes = attribute_names(&header, mapping);
        Ok(LeadColumns { header, id, attributes })
    }

    /// The columns an attribute is read from, in file order.
    pub fn columns_of(&self, attribute: &str) -> Vec<usize> {
        (0..self.header.len()).filter(|&c| c != self.id && self.attributes[c] == attribute).collect()
    }

    /// Every attribute (each once, in the order of its first column) with its columns.
    pub fn all(&self) -> Vec<(&str, Vec<usize>)> {
        let mut all: Vec<(&str, Vec<usize>)> = Vec::new();
        for (c, attribute) in self.attributes.iter().enumerate() {
            if c == self.id {
                continue;
            }
            match all.iter_mut().find(|(a, _)| a == attribute) {
                Some((_, columns)) => columns.push(c),
                None => all.push((attribute, vec![c])),
            }
        }
        all
    }

    /// The header of a column that would have given `field` had it been named in snake_case, to
    /// say so when a model reads a field no column gives.
    pub fn near_miss(&self, field: &str) -> Option<(&str, &str)> {
        let c = self.header.iter().position(|h| h == field)?;
        (c != self.id).then(|| (self.header[c].as_str(), self.attributes[c].as_str()))
    }
}

/// A lead's value of an attribute read from `columns`: the last non-empty cell. `cell` gives a
/// column's (trimmed) cell.
pub fn attribute_value<S: AsRef<str>>(columns: &[usize], cell: impl Fn(usize) -> Option<S>) -> Option<S> {
    columns.iter().rev().find_map(|&c| cell(c).filter(|text| !text.as_ref().is_empty()))
}

/// Explicitly named event columns (`?lead=`, `?type=`, `?time=`, `?event_id=`).
#[derive(Debug, Clone, Copy, Default)]
pub struct EventColumnNames<'a> {
    pub lead: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub time: Option<&'a str>,
    pub event_id: Option<&'a str>,
}

/// The columns of an events file: the lead id, type and time (required), the event's own id
/// (optional); every other column is a property named by its header.
#[derive(Debug, Clone)]
pub struct EventColumns {
    pub header: Vec<String>,
    pub lead: usize,
    pub event_type: usize,
    pub time: usize,
    pub event_id: Option<usize>,
}

impl EventColumns {
    pub fn new(header: Vec<String>, named: EventColumnNames<'_>) -> Result<EventColumns, ColumnError> {
        let find = |named: Option<&str>, names: &'static [&'static str], what: &'static str| match named {
            Some(name) => named_column(&header, name).ok_or_else(|| ColumnError::UnknownNamed(name.into(), what)),
            None => find_column(&header, names).ok_or(ColumnError::Missing { what, names }),
        };
        let lead = find(named.lead, LEAD_ID_COLUMNS, "lead id")?;
        let event_type = find(named.event_type, TYPE_COLUMNS, "event type")?;
        let time = find(named.time, TIME_COLUMNS, "time")?;
        let event_id = match find(named.event_id, EVENT_ID_COLUMNS, "event id") {
            Ok(column) => Some(column),
            Err(ColumnError::Missing { .. }) => None,
            Err(error) => return Err(error),
        };
        Ok(EventColumns { header, lead, event_type, time, event_id })
    }

    /// Whether a column is a property (not the lead id, type, time or event id).
    pub fn is_property(&self, column: usize) -> bool {
        column != self.lead && column != self.event_type && column != self.time && Some(column) != self.event_id
    }

    /// The column of a property, by its exact header.
    pub fn property(&self, name: &str) -> Option<usize> {
        (0..self.header.len()).find(|&c| self.header[c] == name && self.is_property(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn crm_columns_map_to_attributes_and_others_to_snake_case() {
        let header = header(&["Record ID", "Job Title", "Number of Employees", "Favourite Colour", "Custom", "TITLE"]);
        let mapping = ColumnMap(vec![("Custom".to_string(), "segment".to_string())]);
        assert_eq!(
            attribute_names(&header, &mapping),
            ["id", "job_title", "employees", "favourite_colour", "segment", "job_title"]
        );
        assert_eq!(snake_case("Country/Region"), "country_region");
        assert_eq!(snake_case("  --Lead  Source-- "), "lead_source");
    }

    #[test]
    fn cells_are_trimmed_whatever_the_whitespace() {
        assert_eq!(cell(b" US "), "US");
        assert_eq!(cell(b"\tGB\r"), "GB");
        assert_eq!(cell("\u{a0}Paris\u{3000}".as_bytes()), "Paris");
        assert_eq!(trim_bytes("\u{a0}7 ".as_bytes()), b"7");
        assert_eq!(trim_bytes(b" a b "), b"a b");
        assert_eq!(cell(b" \xff "), "\u{fffd}");
        assert_eq!(header_name("\u{feff} lead_id ".as_bytes()), "lead_id");
    }

    #[test]
    fn id_type_and_time_columns_are_found_by_name_whatever_the_case_and_punctuation() {
        assert_eq!(find_column(&header(&["Email", "Record ID"]), LEAD_ID_COLUMNS), Some(1));
        assert_eq!(find_column(&header(&["email", "RECORD-ID"]), LEAD_ID_COLUMNS), Some(1));
        // Preference order, not file order.
        assert_eq!(find_column(&header(&["id", "lead_id"]), LEAD_ID_COLUMNS), Some(1));
        assert_eq!(find_column(&header(&["email"]), LEAD_ID_COLUMNS), None);
        let events = EventColumns::new(
            header(&["Event_ID", "Lead ID", "Activity Type", "Activity Date", "url"]),
            EventColumnNames::default(),
        )
        .unwrap();
        assert_eq!((events.lead, events.event_type, events.time, events.event_id), (1, 2, 3, Some(0)));
        assert_eq!(events.property("url"), Some(4));
        assert_eq!(events.property("Event_ID"), None, "the event id is not a property");
        let missing = EventColumns::new(header(&["lead_id", "ts"]), EventColumnNames::default()).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "no event type column: name one of its columns type, event, event_type, name, Activity Type"
        );
        let named = EventColumnNames { time: Some("when"), ..EventColumnNames::default() };
        let unknown = EventColumns::new(header(&["lead_id", "type", "ts"]), named).unwrap_err();
        assert_eq!(unknown, ColumnError::UnknownNamed("when".to_string(), "time"));
    }

    #[test]
    fn a_lead_attribute_is_the_last_non_empty_cell_of_its_columns() {
        let columns =
            LeadColumns::new(header(&["lead_id", "Title", "Job Title", "Country"]), &ColumnMap::default(), None)
                .unwrap();
        assert_eq!(columns.id, 0);
        assert_eq!(columns.columns_of("job_title"), [1, 2]);
        assert_eq!(columns.columns_of("lead_id"), Vec::<usize>::new(), "the id is not an attribute");
        let all: Vec<&str> = columns.all().iter().map(|(a, _)| *a).collect();
        assert_eq!(all, ["job_title", "country"]);
        let row = ["7", "CTO", "", "US"];
        assert_eq!(attribute_value(&[1, 2], |c| row.get(c).copied()), Some("CTO"));
        let row = ["7", "CTO", "VP", "US"];
        assert_eq!(attribute_value(&[1, 2], |c| row.get(c).copied()), Some("VP"));
        assert_eq!(attribute_value(&[1, 2], |_| Some("")), None);
        assert_eq!(columns.near_miss("Country"), Some(("Country", "country")));
        let unknown = ColumnMap(vec![("Nope".to_string(), "x".to_string())]);
        assert_eq!(
            LeadColumns::new(header(&["lead_id"]), &unknown, None).unwrap_err(),
            ColumnError::UnknownMapped("Nope".to_string())
        );
        assert_eq!(ColumnMap::parse_entry("Custom Score = segment"), Ok(("Custom Score".into(), "segment".into())));
        assert!(ColumnMap::parse_entry("segment").is_err());
    }

    #[test]
    fn the_separator_is_sniffed_from_the_header_line() {
        assert_eq!(sniff_separator(b"lead_id,type,ts\n1;2;3;4;5\n"), b',');
        assert_eq!(sniff_separator(b"lead_id;type;ts;url\r\n1;2;3;4\n"), b';');
        assert_eq!(sniff_separator(b"lead_id\ttype\tts\n"), b'\t');
        assert_eq!(sniff_separator(b"\"a;b\",c\n"), b',');
        assert_eq!(sniff_separator(b"\"a,b\";\"c,d\";e"), b';');
        assert_eq!(sniff_separator(b"lead_id\n"), b',');
        assert_eq!(sniff_separator(b""), b',');
    }
}
