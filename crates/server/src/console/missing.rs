//! The 404 page of the admin pages: what the workspace does not have (a key, a webhook, a
//! person, a predictive model), and the way back to its list.

use askama::Template;

use super::page::AccountView;

#[derive(Template)]
#[template(path = "console/missing.html")]
pub struct MissingPage {
    pub account: Option<AccountView>,
    pub section: &'static str,
    /// What is missing, as a sentence.
    pub what: &'static str,
    /// The list to go back to: its path and the link's text.
    pub back: (&'static str, &'static str),
}
