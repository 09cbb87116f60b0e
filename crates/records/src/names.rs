//! Names users type and reports print: policies and movers.

use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// A pool policy (docs/design.md, section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    FirstFit,
    Compact,
    DrmMm,
    Defrag,
}

impl Policy {
    pub const ALL: [Policy; 4] = [
        Policy::FirstFit,
        Policy::Compact,
        Policy::DrmMm,
        Policy::Defrag,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::FirstFit => "first-fit",
            Policy::Compact => "compact",
            Policy::DrmMm => "drm-mm",
            Policy::Defrag => "defrag",
        }
    }
}

/// How moves are performed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MoverKind {
    /// The BCM2837 DMA engine.
    Dma,
    /// The CPU, copying.
    Cpu,
    /// The simulator's modelled mover.
    Model,
}

impl MoverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MoverKind::Dma => "dma",
            MoverKind::Cpu => "cpu",
            MoverKind::Model => "model",
        }
    }
}

/// A name that is not a policy or mover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseNameError {
    pub what: &'static str,
    pub expected: &'static str,
}

impl fmt::Display for ParseNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {}; expected one of: {}",
            self.what, self.expected
        )
    }
}

impl FromStr for Policy {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(ParseNameError {
                what: "policy",
                expected: "first-fit, compact, drm-mm, defrag",
            })
    }
}

impl FromStr for MoverKind {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [MoverKind::Dma, MoverKind::Cpu, MoverKind::Model]
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or(ParseNameError {
                what: "mover",
                expected: "dma, cpu, model",
            })
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for MoverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
