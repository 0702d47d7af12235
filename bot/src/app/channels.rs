//! The channels the config names (alerts, schedules), gathered for start-up and `deckhand
//! check --online`, which resolve them against the Discord guild.

use crate::chat::discord::channels::ConfiguredChannel;
use crate::router::parse::ChannelRef;

use super::App;

impl App {
    /// Every channel the config names, with where it is named.
    pub fn configured_channels(&self) -> Vec<ConfiguredChannel> {
        let mut out = Vec::new();
        if let Some(alerts) = self.config.alerts.as_ref().filter(|a| a.enabled) {
            out.extend(crate::alerts::channels(alerts));
        }
        out.extend(crate::sched::declared_channels(
            &self.config.schedules,
            &self.config.base_dir,
        ));
        out.into_iter()
            .map(|(place, spelling)| ConfiguredChannel { place, spelling })
            .collect()
    }

    /// The configured channel names (`#alerts`, ...), without ids: what plain `deckhand
    /// check` cannot resolve offline.
    pub fn configured_channel_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .configured_channels()
            .iter()
            .filter_map(|c| ChannelRef::parse(&c.spelling).ok())
            .filter(|c| c.name().is_some())
            .map(|c| c.canonical())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}
