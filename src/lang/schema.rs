//! What the checker may know about the system: the tracepoints and their
//! fields. The checker asks; it never reads files itself. At run time the
//! answers come from tracefs; tests give them from fixtures ([`Formats`]).

use std::collections::BTreeMap;

use crate::tracefs::EventFormat;

/// Tracepoints the checker can check names and fields against. `None` means
/// "unknown": the check is left to the lowering step.
pub trait Schema {
    /// Every tracepoint category (`syscalls`, `sched`, ...).
    fn categories(&self) -> Option<Vec<String>>;
    /// The events of a category (`sys_enter_open`, ...).
    fn events(&self, category: &str) -> Option<Vec<String>>;
    /// The format (fields, offsets, types) of one event.
    fn format(&self, category: &str, event: &str) -> Option<EventFormat>;
}

/// Knows nothing: names and fields are checked later.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSchema;

impl Schema for NoSchema {
    fn categories(&self) -> Option<Vec<String>> {
        None
    }
    fn events(&self, _: &str) -> Option<Vec<String>> {
        None
    }
    fn format(&self, _: &str, _: &str) -> Option<EventFormat> {
        None
    }
}

/// A fixed set of tracepoint formats; the only tracepoints that exist.
#[derive(Clone, Debug, Default)]
pub struct Formats {
    events: BTreeMap<String, BTreeMap<String, EventFormat>>,
}

impl Formats {
    pub fn new() -> Formats {
        Formats::default()
    }

    /// Adds an event of `category` (named by its format's `name`).
    pub fn insert(&mut self, category: &str, format: EventFormat) {
        self.events.entry(category.to_string()).or_default().insert(format.name.clone(), format);
    }
}

impl Schema for Formats {
    fn categories(&self) -> Option<Vec<String>> {
        Some(self.events.keys().cloned().collect())
    }
    fn events(&self, category: &str) -> Option<Vec<String>> {
        Some(self.events.get(category).map(|e| e.keys().cloned().collect()).unwrap_or_default())
    }
    fn format(&self, category: &str, event: &str) -> Option<EventFormat> {
        self.events.get(category)?.get(event).cloned()
    }
}

/// The running kernel's tracepoints, from tracefs.
impl Schema for crate::tracefs::Tracefs {
    fn categories(&self) -> Option<Vec<String>> {
        Some(crate::tracefs::Tracefs::categories(self))
    }
    fn events(&self, category: &str) -> Option<Vec<String>> {
        Some(crate::tracefs::Tracefs::events(self, category))
    }
    fn format(&self, category: &str, event: &str) -> Option<EventFormat> {
        self.event_format(category, event).ok()
    }
}
