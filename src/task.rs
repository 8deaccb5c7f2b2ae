//! What a model predicts: the task nouns every stage shares (data, training, the circuit file).

use serde::{Deserialize, Serialize};

/// What a data set's target is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Classification; targets are class indices `0..classes.len()`.
    Classify {
        /// Class names, index = label.
        classes: Vec<String>,
    },
    /// Regression; targets are real values.
    Regress,
}

/// The kind of task asked for on the command line (`--task classify|regress`), without class
/// names. `None` where an `Option<TaskKind>` is taken means "infer from the target column".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Classification: the target column holds class labels.
    Classify,
    /// Regression: the target column holds real values.
    Regress,
}

impl TaskKind {
    /// The kind of a [`Task`].
    pub fn of(task: &Task) -> TaskKind {
        match task {
            Task::Classify { .. } => TaskKind::Classify,
            Task::Regress => TaskKind::Regress,
        }
    }
}

impl std::str::FromStr for TaskKind {
    type Err = crate::Error;

    /// Parses `classify` or `regress`.
    fn from_str(s: &str) -> crate::Result<TaskKind> {
        match s {
            "classify" => Ok(TaskKind::Classify),
            "regress" => Ok(TaskKind::Regress),
            _ => Err(crate::Error::param(
                "task",
                format!("{s:?} is not a task: use classify or regress"),
            )),
        }
    }
}
