//! "Did you mean …": the known names closest to what was typed.

/// Up to three of `known` other than `given` itself, close to it (case-insensitive Damerau-Levenshtein distance of at
/// most a third of the longer name, at least 2; or containing what was typed), closest first.
pub fn near<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let given = given.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .filter_map(|name| {
            let lower = name.to_ascii_lowercase();
            if lower == given {
                return None;
            }
            let distance = strsim::damerau_levenshtein(&given, &lower);
            let limit = (given.len().max(lower.len()) / 3).max(2);
            let contains = !given.is_empty() && lower.contains(&given);
            (distance <= limit || contains).then_some((distance, name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, name)| name).collect()
}

/// ` (did you mean a or b?)`, or nothing when nothing is near.
pub fn did_you_mean<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    match near(given, known).as_slice() {
        [] => String::new(),
        [one] => format!(" (did you mean {one}?)"),
        [rest @ .., last] => format!(" (did you mean {} or {last}?)", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_and_parts_are_near_strangers_are_not() {
        let known = ["simsvc", "simsvc-mpt", "studio-go-runner"];
        assert_eq!(near("simsvc-mtp", known), ["simsvc-mpt"]);
        assert_eq!(near("SIMSVC", known), ["simsvc-mpt"]);
        assert!(near("postgres", known).is_empty());
        assert_eq!(
            did_you_mean("intnes", ["intens"]),
            " (did you mean intens?)"
        );
        assert_eq!(did_you_mean("zzzzzz", ["intens"]), "");
    }
}
