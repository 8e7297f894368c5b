//! The variables a configuration sets, each with where it was set.

use std::path::Path;
use std::sync::Arc;

use super::error::Location;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub value: String,
    pub loc: Location,
    pub exported: bool,
}

/// Variables in the order they were first set.
#[derive(Debug, Default, Clone)]
pub struct Variables {
    list: Vec<Variable>,
    /// Names given by the caller (PROFILE on the command line): assignments
    /// in files do not change them.
    fixed: Vec<String>,
}

impl Variables {
    pub fn get(&self, name: &str) -> Option<&Variable> {
        self.list.iter().find(|v| v.name == name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).map(|v| v.value.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Variable> {
        self.list.iter()
    }

    /// Sets a variable from a file; ignored for a variable the caller fixed.
    pub fn set(&mut self, name: &str, value: String, loc: Location, export: bool) {
        if self.fixed.iter().any(|f| f == name) {
            return;
        }
        match self.list.iter_mut().find(|v| v.name == name) {
            Some(v) => {
                v.value = value;
                v.loc = loc;
                v.exported |= export;
            }
            None => self.list.push(Variable {
                name: name.to_string(),
                value,
                loc,
                exported: export,
            }),
        }
    }

    /// `export NAME` without a value.
    pub fn mark_exported(&mut self, name: &str) {
        if let Some(v) = self.list.iter_mut().find(|v| v.name == name) {
            v.exported = true;
        }
    }

    /// Sets a variable from the caller (`origin` names where it came from,
    /// such as "command line"); files cannot change it afterwards.
    pub fn fix(&mut self, name: &str, value: &str, origin: &str) {
        let loc = Location {
            file: Arc::from(Path::new(origin)),
            line: 0,
            col: 0,
        };
        self.set(name, value.to_string(), loc, true);
        self.fixed.push(name.to_string());
    }
}
