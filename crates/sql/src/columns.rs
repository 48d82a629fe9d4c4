//! The names of the query's intermediate columns and tables, in one place so that every module
//! refers to a value by the same name.

/// A lead field, by its slot in the model's lead record.
pub(crate) fn lead_field(slot: usize) -> String {
    format!("lead_{slot}")
}

/// An event property, by its slot in the model's event record.
pub(crate) fn event_property(slot: usize) -> String {
    format!("property_{slot}")
}

/// Whether a counted event is one of a tracker's occurrences (a boolean column of the events).
pub(crate) fn tracker(tracker: usize) -> String {
    format!("tracker_{tracker}")
}

/// A rule's columns: over the events, per lead, and on the lead's row.
pub(crate) fn rule_column(score: usize, rule: usize, what: &str) -> String {
    format!("score_{score}_rule_{rule}_{what}")
}

/// A qualifier's count of events per lead.
pub(crate) fn qualifier_count(score: usize, kind: &str, qualifier: usize) -> String {
    format!("score_{score}_{kind}_{qualifier}_count")
}

/// A score's column (`value`, `tier`, `applicable`, ...).
pub(crate) fn score_column(score: usize, what: &str) -> String {
    format!("score_{score}_{what}")
}

/// A lead time field's instant in milliseconds (NULL when it is missing).
pub(crate) fn lead_time(slot: usize) -> String {
    format!("lead_{slot}_at")
}

/// The lead fields `leadscore score` reads as times (`created_at`, and the field `[lead]
/// created_at` names): a lead whose value there is not a time is a bad row, left out.
pub(crate) fn time_field_slots(model: &leadscore_core::Model) -> Vec<usize> {
    let fields = model.lead_fields();
    (0..fields.len()).filter(|&slot| fields[slot] == "created_at" || model.created_at_slot() == Some(slot)).collect()
}
