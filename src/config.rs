//! The configuration file (`--config FILE`): TOML whose keys are the long
//! options of the command line, so that one list of options (clap's) is
//! the only one to keep; a sensor's unit names the file and an operator
//! edits it as any other sensor's.
//!
//! ```toml
//! interface = ["enp1s0"]
//! filter = "tcp or udp"
//! output = ["/var/log/hostwatch/eve.json", "syslog:?types=alert"]
//! buffer-size = 128
//! quiet = true
//! ```
//!
//! A key is a long option (`buffer-size` or `buffer_size`); a flag takes
//! `true` or `false`, a repeatable option a value or an array, any other
//! option one string or number. An option given on the command line
//! replaces the file's (for a repeatable one, all of the file's values),
//! and inputs replace inputs: `-r FILE` with a file that names an
//! interface reads the file only.

use std::ffi::OsString;
use std::path::Path;

use clap::{ArgAction, Command};

/// The largest configuration file read (a configuration is a page).
const MAX_BYTES: u64 = 1 << 20;

/// Options that replace one another as a group: any of them given on the
/// command line drops every one of them from the file.
pub const GROUPS: &[&[&str]] = &[&["read", "interface"], &["filter", "filter_words"]];

/// One option the file sets: the argument's id and the words that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub id: String,
    pub words: Vec<OsString>,
}

impl Setting {
    /// Whether the command line replaces this setting, `given` telling
    /// which argument ids the command line set.
    pub fn overridden(&self, given: impl Fn(&str) -> bool) -> bool {
        let group = GROUPS
            .iter()
            .find(|g| g.contains(&self.id.as_str()))
            .copied()
            .unwrap_or(&[]);
        given(&self.id) || group.iter().any(|id| given(id))
    }
}

/// Reads `path` and turns it into settings of `cmd`'s options; an error
/// names the file.
pub fn load(path: &Path, cmd: &Command) -> Result<Vec<Setting>, String> {
    use std::io::Read;
    let named = |e: String| format!("{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| named(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| named(e.to_string()))?;
    if text.len() as u64 > MAX_BYTES {
        return Err(named(format!(
            "larger than {} KiB: not a configuration file",
            MAX_BYTES >> 10
        )));
    }
    parse(&text, cmd).map_err(named)
}

/// Turns TOML text into settings of `cmd`'s long options, in the file's
/// key order (sorted).
pub fn parse(text: &str, cmd: &Command) -> Result<Vec<Setting>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| one_line(&e.to_string()))?;
    let mut settings = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()))
            .filter(|_| !matches!(long.as_str(), "config" | "help" | "version"))
            .ok_or_else(|| {
                format!("unknown key '{key}' (the keys are the long options of --help)")
            })?;
        let words = words(&long, arg.get_action(), value).map_err(|e| format!("{key}: {e}"))?;
        settings.push(Setting {
            id: arg.get_id().to_string(),
            words,
        });
    }
    Ok(settings)
}

/// The command-line words that give `value` to `--long`.
fn words(long: &str, action: &ArgAction, value: &toml::Value) -> Result<Vec<OsString>, String> {
    use toml::Value;
    let word = |v: &str| OsString::from(format!("--{long}={v}"));
    match (action, value) {
        (ArgAction::SetTrue, Value::Boolean(true)) => Ok(vec![OsString::from(format!("--{long}"))]),
        (ArgAction::SetTrue, Value::Boolean(false)) => Ok(Vec::new()),
        (ArgAction::SetTrue, _) => Err("a flag: true or false".into()),
        (ArgAction::Append, Value::Array(items)) => {
            items.iter().map(|v| scalar(v).map(|s| word(&s))).collect()
        }
        (ArgAction::Set | ArgAction::Append, v) => Ok(vec![word(&scalar(v)?)]),
        _ => Err("cannot be set from a file".into()),
    }
}

/// A string or a number, as the command line would spell it.
fn scalar(v: &toml::Value) -> Result<String, String> {
    match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Array(_) => Err("takes one value, not an array".into()),
        toml::Value::Table(_) => Err("takes a value, not a table".into()),
        toml::Value::Boolean(_) => Err("takes a value, not true or false".into()),
        toml::Value::Datetime(_) => Err("takes a value, not a date".into()),
    }
}

/// TOML's errors quote the line over several; one line says it.
fn one_line(e: &str) -> String {
    e.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "|" && !l.starts_with('|') && !l.starts_with('^'))
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    fn cmd() -> Command {
        Command::new("t")
            .arg(
                Arg::new("read")
                    .short('r')
                    .long("read")
                    .action(ArgAction::Append),
            )
            .arg(
                Arg::new("interface")
                    .short('i')
                    .long("interface")
                    .action(ArgAction::Append),
            )
            .arg(Arg::new("filter").short('f').long("filter"))
            .arg(Arg::new("buffer_size").long("buffer-size"))
            .arg(
                Arg::new("quiet")
                    .short('q')
                    .long("quiet")
                    .action(ArgAction::SetTrue),
            )
            .arg(Arg::new("config").long("config"))
            .arg(Arg::new("filter_words").action(ArgAction::Append))
    }

    fn words_of(s: &[Setting]) -> Vec<String> {
        s.iter()
            .flat_map(|s| s.words.iter().map(|w| w.to_string_lossy().into_owned()))
            .collect()
    }

    #[test]
    fn keys_become_long_options() -> Result<(), String> {
        let s = parse(
            "interface = [\"enp1s0\", \"enp2s0\"]\nfilter = \"tcp or udp\"\nbuffer_size = 128\nquiet = true\n",
            &cmd(),
        )?;
        assert_eq!(
            words_of(&s),
            [
                "--buffer-size=128",
                "--filter=tcp or udp",
                "--interface=enp1s0",
                "--interface=enp2s0",
                "--quiet"
            ]
        );
        let ids: Vec<&str> = s.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["buffer_size", "filter", "interface", "quiet"]);
        Ok(())
    }

    #[test]
    fn a_repeatable_option_takes_one_value_too_and_false_sets_nothing() -> Result<(), String> {
        let s = parse("read = \"-x.pcap\"\nquiet = false\n", &cmd())?;
        // `=` keeps a value that starts with a dash a value.
        assert_eq!(words_of(&s), ["--read=-x.pcap"]);
        Ok(())
    }

    #[test]
    fn wrong_keys_and_types_are_named() {
        let unknown =
            |k: &str| format!("unknown key '{k}' (the keys are the long options of --help)");
        for (text, want) in [
            ("interfce = \"eth0\"", unknown("interfce")),
            ("config = \"x\"", unknown("config")),
            ("[outputs]\nfile = \"x\"", unknown("outputs")),
            ("quiet = \"yes\"", "quiet: a flag: true or false".into()),
            (
                "filter = [\"tcp\"]",
                "filter: takes one value, not an array".into(),
            ),
            (
                "read = [[\"a\"]]",
                "read: takes one value, not an array".into(),
            ),
        ] {
            assert_eq!(parse(text, &cmd()), Err(want), "{text}");
        }
        let Err(e) = parse("interface = eth0", &cmd()) else {
            panic!("a bare word was read as TOML");
        };
        assert!(
            e.starts_with("TOML parse error at line 1, column 13"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn the_command_line_replaces_a_setting_and_its_group() -> Result<(), String> {
        let s = parse(
            "interface = \"eth0\"\nfilter = \"tcp\"\nquiet = true",
            &cmd(),
        )?;
        let given = |ids: &'static [&'static str]| move |id: &str| ids.contains(&id);
        let kept = |ids: &'static [&'static str]| -> Vec<String> {
            s.iter()
                .filter(|x| !x.overridden(given(ids)))
                .map(|x| x.id.clone())
                .collect()
        };
        assert_eq!(kept(&[]), ["filter", "interface", "quiet"]);
        assert_eq!(kept(&["read"]), ["filter", "quiet"]);
        assert_eq!(kept(&["filter_words"]), ["interface", "quiet"]);
        assert_eq!(kept(&["interface", "quiet"]), ["filter"]);
        Ok(())
    }
}
