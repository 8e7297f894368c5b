//! printconf's output: one `VAR=value` line per variable.
//!
//! Plain output is for programs that take everything after the `=` up to
//! the end of the line as the value. `--quote` output is for
//! `eval "$(printconf --quote NAME)"` in a shell: every value is put in
//! double quotes with `"`, `\`, `$` and backquote escaped, so no value can
//! run anything. No value holds a control character other than tab and
//! newline (`syntax` refuses them), so nothing here reaches a terminal raw.

use super::guest::GuestConfig;

pub fn render(config: &GuestConfig, quote: bool) -> String {
    let mut out = String::new();
    for (name, value) in config.effective() {
        out.push_str(&name);
        out.push('=');
        if quote {
            out.push('"');
            for c in value.chars() {
                if matches!(c, '"' | '\\' | '$' | '`') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            // One line per variable, whatever the value holds.
            out.extend(value.chars().map(|c| if c == '\n' { ' ' } else { c }));
        }
        out.push('\n');
    }
    out
}
