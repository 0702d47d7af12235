//! Holiday calendars: `[schedules.calendars]` names lists of days, each `YYYY-MM-DD` (one
//! day) or `*-MM-DD` (that day every year). A config schedule with `skip_on = ["fi-holidays"]`
//! does not run on those days; with `only_on = ["sprint-days"]` it runs on those days only.
//! Days are read in the schedule's own zone: a 20:00 Helsinki run on 24 December is skipped by
//! `2026-12-24` even though it is 18:00 UTC.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

/// One entry of a calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayRule {
    Date(NaiveDate),
    /// Every year on this month and day (29 February only in leap years).
    Yearly {
        month: u32,
        day: u32,
    },
}

impl DayRule {
    pub fn parse(text: &str) -> Result<DayRule, String> {
        let text = text.trim();
        if let Some(md) = text.strip_prefix("*-") {
            let (m, d) = md.split_once('-').ok_or_else(|| {
                format!("{text:?} is not a day: write YYYY-MM-DD, or *-MM-DD for every year")
            })?;
            let (month, day) = (m.parse::<u32>(), d.parse::<u32>());
            if let (Ok(month), Ok(day)) = (month, day)
                && m.len() == 2
                && d.len() == 2
                // 2024 is a leap year, so *-02-29 is accepted.
                && NaiveDate::from_ymd_opt(2024, month, day).is_some()
            {
                return Ok(DayRule::Yearly { month, day });
            }
            return Err(format!(
                "{text:?} is not a day of the year: write *-MM-DD, e.g. *-12-24"
            ));
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(DayRule::Date)
            .map_err(|_| {
                format!("{text:?} is not a day: write YYYY-MM-DD, or *-MM-DD for every year")
            })
    }

    pub fn matches(&self, date: NaiveDate) -> bool {
        match *self {
            DayRule::Date(d) => d == date,
            DayRule::Yearly { month, day } => date.month() == month && date.day() == day,
        }
    }
}

/// Calendars by name, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calendars(BTreeMap<String, Vec<DayRule>>);

impl Calendars {
    /// Parses `[schedules.calendars]`; every bad entry is reported.
    pub fn parse(section: &BTreeMap<String, Vec<String>>) -> (Calendars, Vec<String>) {
        let mut errors = Vec::new();
        let mut out = BTreeMap::new();
        for (name, days) in section {
            let mut rules = Vec::new();
            for day in days {
                match DayRule::parse(day) {
                    Ok(rule) => rules.push(rule),
                    Err(e) => errors.push(format!("[schedules.calendars] {name}: {e}")),
                }
            }
            out.insert(name.clone(), rules);
        }
        (Calendars(out), errors)
    }

    /// The rules a schedule's `skip_on`/`only_on` names, or what it names that does not exist.
    pub fn days_for(&self, skip_on: &[String], only_on: &[String]) -> Result<DayFilter, String> {
        let pick = |names: &[String], field: &str| {
            names
                .iter()
                .map(|n| {
                    self.0.get(n).map(|r| (n.clone(), r.clone())).ok_or_else(|| {
                        let known: Vec<&str> = self.0.keys().map(String::as_str).collect();
                        format!(
                            "{field} names calendar {n:?}, which [schedules.calendars] does not define ({})",
                            if known.is_empty() {
                                "it defines none".to_owned()
                            } else {
                                format!("defined: {}", known.join(", "))
                            }
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(DayFilter {
            skip_on: pick(skip_on, "skip_on")?,
            only_on: pick(only_on, "only_on")?,
        })
    }
}

/// A schedule's day rules: never on a `skip_on` day; when `only_on` is set, only on its days.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayFilter {
    pub skip_on: Vec<(String, Vec<DayRule>)>,
    pub only_on: Vec<(String, Vec<DayRule>)>,
}

impl DayFilter {
    pub fn is_empty(&self) -> bool {
        self.skip_on.is_empty() && self.only_on.is_empty()
    }

    /// Why a firing on local day `date` does not run, or `None` if it runs.
    pub fn excludes(&self, date: NaiveDate) -> Option<String> {
        if let Some((name, _)) = self
            .skip_on
            .iter()
            .find(|(_, rules)| rules.iter().any(|r| r.matches(date)))
        {
            return Some(format!("{date} is in calendar {name} (skip_on)"));
        }
        if !self.only_on.is_empty()
            && !self
                .only_on
                .iter()
                .any(|(_, rules)| rules.iter().any(|r| r.matches(date)))
        {
            let names: Vec<&str> = self.only_on.iter().map(|(n, _)| n.as_str()).collect();
            return Some(format!(
                "{date} is not in calendar {} (only_on)",
                names.join(" or ")
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn dates_and_yearly_days_parse_and_bad_ones_are_explained() {
        let section = BTreeMap::from([(
            "fi-holidays".to_owned(),
            vec![
                "2026-12-24".to_owned(),
                "*-12-06".to_owned(),
                "*-02-29".to_owned(),
                "2026-13-01".to_owned(),
                "*-12-32".to_owned(),
            ],
        )]);
        let (calendars, errors) = Calendars::parse(&section);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("\"2026-13-01\" is not a day: write YYYY-MM-DD"));
        assert!(errors[1].contains("\"*-12-32\" is not a day of the year"));
        let filter = calendars
            .days_for(&["fi-holidays".to_owned()], &[])
            .unwrap();
        assert!(filter.excludes(day("2026-12-24")).is_some());
        assert!(filter.excludes(day("2027-12-24")).is_none());
        assert_eq!(
            filter.excludes(day("2031-12-06")).as_deref(),
            Some("2031-12-06 is in calendar fi-holidays (skip_on)")
        );
        assert!(filter.excludes(day("2028-02-29")).is_some());
        let err = calendars
            .days_for(&[], &["sprints".to_owned()])
            .unwrap_err();
        assert!(
            err.contains("only_on names calendar \"sprints\"")
                && err.contains("defined: fi-holidays"),
            "{err}"
        );
    }

    #[test]
    fn only_on_runs_on_its_days_only() {
        let section = BTreeMap::from([("demo".to_owned(), vec!["2026-12-10".to_owned()])]);
        let (calendars, _) = Calendars::parse(&section);
        let filter = calendars.days_for(&[], &["demo".to_owned()]).unwrap();
        assert_eq!(filter.excludes(day("2026-12-10")), None);
        assert_eq!(
            filter.excludes(day("2026-12-11")).as_deref(),
            Some("2026-12-11 is not in calendar demo (only_on)")
        );
    }
}
