//! What an `sm://` value names, and what a secret is once read: its text, never printed.

pub(super) const SCHEME: &str = "sm://";

/// A secret's text. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(pub(super) String);

impl SecretValue {
    /// The text itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretValue {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

impl std::fmt::Display for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A parsed `sm://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The project, when the reference names one.
    pub project: Option<String>,
    /// The location of a regional secret.
    pub location: Option<String>,
    /// The secret id.
    pub secret: String,
    /// `latest`, a version number or an alias.
    pub version: String,
}

impl SecretRef {
    /// `None` when `raw` is not an `sm://` reference; else the reference or why it is malformed.
    pub fn parse(raw: &str) -> Option<Result<Self, String>> {
        let rest = raw.strip_prefix(SCHEME)?;
        Some(Self::parse_rest(rest))
    }

    fn parse_rest(rest: &str) -> Result<Self, String> {
        let id = |s: &str, what: &str| -> Result<String, String> {
            let ok = !s.is_empty()
                && s.len() <= 255
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if ok {
                Ok(s.to_owned())
            } else {
                Err(format!(
                    "{what} {s:?} must be 1 to 255 letters, digits, '-' or '_'"
                ))
            }
        };
        if let Some(path) = rest.strip_prefix("projects/") {
            let parts: Vec<&str> = path.split('/').collect();
            let (project, location, tail) = match parts.as_slice() {
                [p, "locations", l, tail @ ..] => (*p, Some(*l), tail),
                [p, tail @ ..] => (*p, None, tail),
                [] => unreachable!("split yields at least one part"),
            };
            let (secret, version) = match tail {
                ["secrets", s] => (*s, "latest"),
                ["secrets", s, "versions", v] => (*s, *v),
                _ => {
                    return Err(
                        "expected sm://projects/P/secrets/S/versions/V (or .../locations/L/secrets/...)"
                            .into(),
                    );
                }
            };
            if project.is_empty() || project.contains(char::is_whitespace) {
                return Err(format!("project {project:?} is not a project id"));
            }
            return Ok(Self {
                project: Some(project.to_owned()),
                location: location.map(|l| id(l, "location")).transpose()?,
                secret: id(secret, "secret")?,
                version: id(version, "version")?,
            });
        }
        let (secret, version) = rest.split_once('#').unwrap_or((rest, "latest"));
        Ok(Self {
            project: None,
            location: None,
            secret: id(secret, "secret")?,
            version: id(version, "version")?,
        })
    }

    /// `projects/P[/locations/L]/secrets/S/versions/V`.
    pub(super) fn resource(&self, project: &str) -> String {
        let project = self.project.as_deref().unwrap_or(project);
        match &self.location {
            Some(l) => format!(
                "projects/{project}/locations/{l}/secrets/{}/versions/{}",
                self.secret, self.version
            ),
            None => format!(
                "projects/{project}/secrets/{}/versions/{}",
                self.secret, self.version
            ),
        }
    }
}
