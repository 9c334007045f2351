//! A service's lifecycle state: one enum, written as the strings events,
//! the daemon's status and `summary.json` have always used.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a service is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ServiceState {
    /// Waiting for what it depends on.
    #[default]
    Waiting,
    /// Its `cargo` package is being built.
    Building,
    /// Its prestart hook, process, readiness probe or init hook is running.
    Starting,
    /// Ready: dependents may start.
    Ready,
    /// Exited; starting again after a backoff.
    Restarting,
    /// A job that exited 0.
    Completed,
    /// Failed for good.
    Failed,
    /// Stopped on request.
    Stopped,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Building => "building",
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Restarting => "restarting",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "waiting" => Self::Waiting,
            "building" => Self::Building,
            "starting" => Self::Starting,
            "ready" => Self::Ready,
            "restarting" => Self::Restarting,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "stopped" => Self::Stopped,
            _ => return None,
        })
    }

    /// It will not change again unless asked to (failed, stopped, or a
    /// completed job).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Stopped)
    }
}

impl std::fmt::Display for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `state` of a lifecycle event: a service's, or the environment's
/// (`up`, `down`) or the start's (`stalled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleState {
    Service(ServiceState),
    Up,
    Down,
    Stalled,
    /// A state written by a newer tapmesh, kept as it was.
    Unknown(Box<str>),
}

impl Default for LifecycleState {
    fn default() -> Self {
        Self::Service(ServiceState::default())
    }
}

impl From<ServiceState> for LifecycleState {
    fn from(state: ServiceState) -> Self {
        Self::Service(state)
    }
}

impl LifecycleState {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Service(s) => s.as_str(),
            Self::Up => "up",
            Self::Down => "down",
            Self::Stalled => "stalled",
            Self::Unknown(s) => s,
        }
    }

    /// The service's state, on a service's event.
    pub fn service(&self) -> Option<ServiceState> {
        match self {
            Self::Service(s) => Some(*s),
            _ => None,
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "up" => Self::Up,
            "down" => Self::Down,
            "stalled" => Self::Stalled,
            other => ServiceState::parse(other)
                .map_or_else(|| Self::Unknown(other.into()), Self::Service),
        }
    }
}

impl PartialEq<&str> for LifecycleState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ServiceState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ServiceState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown service state {text:?}")))
    }
}

impl Serialize for LifecycleState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LifecycleState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_the_strings_they_always_were() {
        for state in [
            ServiceState::Waiting,
            ServiceState::Building,
            ServiceState::Starting,
            ServiceState::Ready,
            ServiceState::Restarting,
            ServiceState::Completed,
            ServiceState::Failed,
            ServiceState::Stopped,
        ] {
            let json = serde_json::to_string(&LifecycleState::from(state)).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            let back: LifecycleState = serde_json::from_str(&json).unwrap();
            assert_eq!(back.service(), Some(state));
        }
        let up: LifecycleState = serde_json::from_str("\"up\"").unwrap();
        assert_eq!(up, LifecycleState::Up);
        let newer: LifecycleState = serde_json::from_str("\"hibernating\"").unwrap();
        assert_eq!(serde_json::to_string(&newer).unwrap(), "\"hibernating\"");
    }
}
