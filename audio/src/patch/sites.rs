//! Call-site identity: which state each stateful call owns, across recompiles.
//!
//! Every call of a builtin (`Cycle(`, `Delay(`...) in the source is a *call
//! site*. Before compiling, each site gets a [`SiteId`], written into the call
//! as a hidden first argument (`Cycle(440)` compiles as `Cycle(7, 440)`; no
//! newline is added, so line numbers stay true).
//!
//! On a recompile the new source's tokens are diffed against the installed
//! source's tokens (Myers diff over token texts). A new site whose builtin
//! token is matched by the diff to an old site of the same builtin inherits
//! that site's id, hence its state. Editing a constant, adding lines or other
//! oscillators, or moving code around it leaves the token itself matched, so
//! the state carries over; deleting the call or renaming the builtin makes a
//! new site with fresh state. Within one `play()`, repeated executions of a
//! site (loops, a macro expanded twice) are told apart by order, each with a
//! cell of its own (see `state`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use similar::{capture_diff_slices_deadline, Algorithm, DiffOp};

use super::lexer::{Kind, Token};
use crate::builtins::Builtin;
use crate::state::MAX_SITES;

/// Index of a call site's entry in the state memory's site table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId(pub u32);

/// A builtin call in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSite {
    pub id: SiteId,
    pub builtin: Builtin,
    /// Index of the builtin's name in the token list.
    pub token: usize,
    pub line: u32,
    pub col: u32,
}

/// The outcome of matching a new source's call sites against the installed ones.
#[derive(Debug, Clone)]
pub struct SitePlan {
    pub sites: Vec<CallSite>,
    /// Sites that kept their state.
    pub kept: usize,
    /// Old sites that no longer exist: freed once the old code stopped running.
    pub removed: Vec<SiteId>,
    tokens: Vec<String>,
}

/// Finds the builtin calls in a token list: a builtin's name followed by `(`,
/// not a member access (`x.Cycle(`) and not a declaration (`float Cycle(float);`).
pub fn find_calls(src: &str, tokens: &[Token]) -> Vec<(usize, Builtin)> {
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if t.kind != Kind::Ident {
            continue;
        }
        let Some(b) = Builtin::from_name(t.text(src)) else {
            continue;
        };
        let opens = tokens.get(i + 1).is_some_and(|n| n.text(src) == "(");
        let member = i > 0 && matches!(tokens[i - 1].text(src), "." | "->");
        if opens && !member && declaration_start(src, tokens, i).is_none() {
            out.push((i, b));
        }
    }
    out
}

/// C's type and storage words: a name right after them (or after `*`s after
/// them) is being declared, not called.
const TYPE_WORDS: &[&str] = &[
    "float", "double", "int", "void", "char", "long", "short", "unsigned", "signed", "const", "static", "extern",
    "inline", "volatile", "register",
];

/// If `tokens[i]` is a name being declared, the index of the first type word of its declaration.
fn declaration_start(src: &str, tokens: &[Token], i: usize) -> Option<usize> {
    let mut j = i;
    while j > 0 && tokens[j - 1].text(src) == "*" {
        j -= 1;
    }
    let mut start = None;
    while j > 0 && TYPE_WORDS.contains(&tokens[j - 1].text(src)) {
        j -= 1;
        start = Some(j);
    }
    start
}

/// The patch's own declarations of builtins. The CLAVM notes declare the
/// builtins as prototypes (`float Phasor(float);`): such a prototype, if it
/// says what the builtin is (returns `float`, takes its number of
/// arguments), is accepted and its byte range returned, to be blanked before
/// compiling (the builtin's real signature carries a hidden call-site id).
/// Anything else named like a builtin (a function of the patch's own, a
/// variable, a prototype that disagrees) is refused, with where and why:
/// builtins are not shadowed, since calls to them are rewritten.
pub fn own_declarations(src: &str, tokens: &[Token]) -> Result<Vec<(usize, usize)>, (u32, u32, String)> {
    let mut blank = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if t.kind != Kind::Ident {
            continue;
        }
        let Some(b) = Builtin::from_name(t.text(src)) else { continue };
        let Some(start) = declaration_start(src, tokens, i) else { continue };
        let signature = b.signature();
        let refuse = |why: String| Err((t.line, t.col, why));
        if tokens.get(i + 1).map(|n| n.text(src)) != Some("(") {
            return refuse(format!("'{}' is a builtin ({signature}): give this another name", b.name()));
        }
        // The parameter list, to its closing parenthesis.
        let (mut depth, mut commas, mut inside, mut close) = (0usize, 0usize, Vec::new(), None);
        for (k, p) in tokens.iter().enumerate().skip(i + 2) {
            match p.text(src) {
                "(" => depth += 1,
                ")" if depth == 0 => {
                    close = Some(k);
                    break;
                }
                ")" => depth -= 1,
                "," if depth == 0 => commas += 1,
                _ => {}
            }
            inside.push(p.text(src));
        }
        let Some(close) = close else { return refuse(format!("unclosed declaration of builtin '{}'", b.name())) };
        let params = match inside.as_slice() {
            [] | ["void"] => 0,
            _ => commas + 1,
        };
        let returns_float = tokens[start..i].iter().any(|w| w.text(src) == "float")
            && !tokens[start..i].iter().any(|w| matches!(w.text(src), "*" | "double" | "int" | "void"));
        match tokens.get(close + 1).map(|n| n.text(src)) {
            Some("{") => {
                return refuse(format!(
                    "'{}' is a builtin ({signature}), not to be defined again: give your function another name",
                    b.name()
                ))
            }
            Some(";") if params == b.params().len() && returns_float => {
                blank.push((tokens[start].start, tokens[close + 1].end));
            }
            Some(";") => {
                return refuse(format!("this declaration of builtin '{}' does not match it: {signature}", b.name()))
            }
            _ => return refuse(format!("'{}' is a builtin ({signature}): give this another name", b.name())),
        }
    }
    Ok(blank)
}

/// `src` with each range replaced by spaces (line breaks kept, so every
/// position after it is unchanged).
pub fn blank_out(src: &str, ranges: &[(usize, usize)]) -> String {
    let mut out = src.as_bytes().to_vec();
    for &(a, z) in ranges {
        for b in &mut out[a..z] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    // Only ASCII bytes of whole tokens were replaced by ASCII spaces.
    String::from_utf8(out).unwrap_or_else(|_| src.to_string())
}

/// Counts the arguments of the call whose `(` is `tokens[open]`; `None` if unclosed.
fn count_args(src: &str, tokens: &[Token], open: usize) -> Option<usize> {
    let (mut depth, mut commas, mut empty) = (0i32, 0usize, true);
    for t in &tokens[open + 1..] {
        match t.text(src) {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" if depth == 0 => return Some(if empty { 0 } else { commas + 1 }),
            ")" | "]" | "}" => depth -= 1,
            "," if depth == 0 => commas += 1,
            _ => {}
        }
        empty = false;
    }
    None
}

/// Checks that every builtin call has the right number of arguments, so the
/// message names the builtin and what it takes (TinyCC's would not: it sees
/// the rewritten call with the hidden site id). The API functions (`_gate`,
/// `_p`, ...) are checked the same way: TinyCC's own message names neither
/// the function nor the column.
pub fn check_arity(src: &str, tokens: &[Token]) -> Result<(), (u32, u32, String)> {
    let mut calls: Vec<(usize, &str, Vec<&str>)> =
        find_calls(src, tokens).into_iter().map(|(i, b)| (i, b.name(), b.params().to_vec())).collect();
    calls.extend(api_calls(src, tokens));
    calls.sort_by_key(|c| c.0);
    for (i, name, params) in calls {
        let Some(given) = count_args(src, tokens, i + 1) else {
            continue;
        };
        if given != params.len() {
            let t = &tokens[i];
            let msg = match params.len() {
                0 => format!("{name}() takes no arguments, {given} given"),
                1 => format!("{name}() takes 1 argument ({}), {given} given", params[0]),
                n => format!("{name}() takes {n} arguments ({}), {given} given", params.join(", ")),
            };
            return Err((t.line, t.col, msg));
        }
    }
    Ok(())
}

/// Calls of the API's `_` functions: (token, name, parameter names).
fn api_calls<'a>(src: &'a str, tokens: &[Token]) -> Vec<(usize, &'a str, Vec<&'static str>)> {
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let name = t.text(src);
        if t.kind != Kind::Ident || !name.starts_with('_') {
            continue;
        }
        let Some(f) =
            crate::builtins::api::functions().iter().find(|f| f.clavm && f.name.to_bytes() == name.as_bytes())
        else {
            continue;
        };
        let opens = tokens.get(i + 1).is_some_and(|n| n.text(src) == "(");
        let member = i > 0 && matches!(tokens[i - 1].text(src), "." | "->");
        if opens && !member && declaration_start(src, tokens, i).is_none() {
            // "int voice, float x" -> ["voice", "x"]; "void" -> [].
            let params = f
                .params
                .split(',')
                .map(|p| p.trim().rsplit(' ').next().unwrap_or(""))
                .filter(|p| !p.is_empty() && *p != "void")
                .collect();
            out.push((i, name, params));
        }
    }
    out
}

/// Writes the site ids into the calls: `Cycle(440)` becomes `Cycle(7,440)`.
pub fn rewrite(src: &str, tokens: &[Token], sites: &[CallSite]) -> String {
    let mut out = String::with_capacity(src.len() + sites.len() * 6);
    let mut last = 0;
    for s in sites {
        let paren = &tokens[s.token + 1];
        out.push_str(&src[last..paren.end]);
        let empty = tokens.get(s.token + 2).is_some_and(|t| t.text(src) == ")");
        out.push_str(&s.id.0.to_string());
        if !empty {
            out.push(',');
        }
        last = paren.end;
    }
    out.push_str(&src[last..]);
    out
}

/// Too many stateful calls for the site table.
#[derive(Debug, Clone, thiserror::Error)]
#[error("this patch has {count} stateful builtin calls; the limit is {MAX_SITES}")]
pub struct TooManySites {
    pub count: usize,
    /// Where the first call over the limit is.
    pub line: u32,
    pub col: u32,
}

/// Which site ids the installed program uses, and which are waiting to be freed.
#[derive(Debug, Default, Clone)]
pub struct SiteRegistry {
    tokens: Vec<String>,
    sites: Vec<CallSite>,
    /// Removed from the source but maybe still in use by a fading program.
    pending: Vec<SiteId>,
}

/// How long the token diff may take before it settles for an approximate match.
const DIFF_DEADLINE: Duration = Duration::from_millis(50);

impl SiteRegistry {
    /// Matches the new source's calls against the installed ones. Pure: nothing
    /// changes until [`commit`](Self::commit).
    pub fn plan(&self, src: &str, tokens: &[Token]) -> Result<SitePlan, TooManySites> {
        let calls = find_calls(src, tokens);
        if calls.len() > MAX_SITES {
            let t = &tokens[calls[MAX_SITES].0];
            return Err(TooManySites { count: calls.len(), line: t.line, col: t.col });
        }
        let texts: Vec<String> = tokens.iter().map(|t| t.text(src).to_string()).collect();

        // New token index -> old token index, for tokens the diff matched.
        let mut matched: HashMap<usize, usize> = HashMap::new();
        if !self.sites.is_empty() {
            let deadline = Some(Instant::now() + DIFF_DEADLINE);
            for op in capture_diff_slices_deadline(Algorithm::Myers, &self.tokens, &texts, deadline) {
                if let DiffOp::Equal { old_index, new_index, len } = op {
                    for k in 0..len {
                        matched.insert(new_index + k, old_index + k);
                    }
                }
            }
        }
        let old_by_token: HashMap<usize, &CallSite> = self.sites.iter().map(|s| (s.token, s)).collect();

        let mut used = vec![false; MAX_SITES];
        for id in &self.pending {
            used[id.0 as usize] = true;
        }
        let mut ids: Vec<Option<SiteId>> = Vec::with_capacity(calls.len());
        let mut kept_old: Vec<SiteId> = Vec::new();
        for &(tok, b) in &calls {
            let old = matched.get(&tok).and_then(|o| old_by_token.get(o)).filter(|s| s.builtin == b);
            if let Some(s) = old {
                used[s.id.0 as usize] = true;
                kept_old.push(s.id);
            }
            ids.push(old.map(|s| s.id));
        }
        // Old sites not kept are removed; their ids stay taken until freed.
        let removed: Vec<SiteId> = self.sites.iter().map(|s| s.id).filter(|id| !kept_old.contains(id)).collect();
        for id in &removed {
            used[id.0 as usize] = true;
        }
        let mut free = (0..MAX_SITES as u32).filter(|i| !used[*i as usize]);
        let mut sites = Vec::with_capacity(calls.len());
        for (&(tok, b), id) in calls.iter().zip(ids) {
            let id = match id {
                Some(id) => id,
                None => match free.next() {
                    Some(i) => SiteId(i),
                    None => {
                        let t = &tokens[tok];
                        return Err(TooManySites { count: calls.len() + removed.len(), line: t.line, col: t.col });
                    }
                },
            };
            let t = &tokens[tok];
            sites.push(CallSite { id, builtin: b, token: tok, line: t.line, col: t.col });
        }
        Ok(SitePlan { kept: kept_old.len(), sites, removed, tokens: texts })
    }

    /// Makes `plan` the installed program's sites. Its removed ids stay reserved
    /// until [`release`](Self::release) says the engine has freed them.
    pub fn commit(&mut self, plan: &SitePlan) {
        self.tokens = plan.tokens.clone();
        self.sites = plan.sites.clone();
        self.pending.extend(plan.removed.iter().copied());
    }

    /// The engine freed these sites' state: their ids may be used again.
    pub fn release(&mut self, ids: &[SiteId]) {
        self.pending.retain(|id| !ids.contains(id));
    }

    /// Reserves (as pending) every id `other` uses or reserves that this
    /// registry does not know, so none is handed out while state may remain.
    pub fn reserve_unknown(&mut self, other: &SiteRegistry) {
        let known = |id: &SiteId| self.sites.iter().any(|s| s.id == *id) || self.pending.contains(id);
        let extra: Vec<SiteId> =
            other.sites.iter().map(|s| s.id).chain(other.pending.iter().copied()).filter(|id| !known(id)).collect();
        self.pending.extend(extra);
    }

    pub fn sites(&self) -> &[CallSite] {
        &self.sites
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::lexer::tokenize;

    fn plan_and_commit(reg: &mut SiteRegistry, src: &str) -> SitePlan {
        let toks = tokenize(src);
        let plan = reg.plan(src, &toks).unwrap();
        reg.commit(&plan);
        plan
    }

    fn id_of(plan: &SitePlan, src: &str, needle: &str) -> SiteId {
        let toks = tokenize(src);
        plan.sites
            .iter()
            .find(|s| {
                let start = toks[s.token].start;
                src[start..].starts_with(needle)
            })
            .unwrap_or_else(|| panic!("no site at {needle}"))
            .id
    }

    #[test]
    fn rewrite_adds_the_id_without_moving_lines() {
        let src = "void play(void) {\n  _out(0, Cycle(440) + Phasor());\n}\n";
        let toks = tokenize(src);
        let plan = SiteRegistry::default().plan(src, &toks).unwrap();
        let out = rewrite(src, &toks, &plan.sites);
        assert_eq!(out, "void play(void) {\n  _out(0, Cycle(0,440) + Phasor(1));\n}\n");
    }

    #[test]
    fn editing_a_constant_or_adding_lines_and_oscillators_keeps_every_site() {
        let mut reg = SiteRegistry::default();
        let a = "void play(void) { float x = Cycle(440); _out(0, x * Onepole(Phasor(2), 0.1)); }";
        let p1 = plan_and_commit(&mut reg, a);
        let b = "// a comment\n#define G 0.5\nvoid play(void) {\n float y = Tri(3);\n float x = Cycle(220) + Cycle(330);\n _out(0, y * x * Onepole(Phasor(2.5), 0.2)); }";
        let p2 = plan_and_commit(&mut reg, b);
        assert_eq!(id_of(&p1, a, "Cycle(440)"), id_of(&p2, b, "Cycle(220)"));
        assert_eq!(id_of(&p1, a, "Onepole"), id_of(&p2, b, "Onepole"));
        assert_eq!(id_of(&p1, a, "Phasor"), id_of(&p2, b, "Phasor"));
        let fresh = [id_of(&p2, b, "Tri"), id_of(&p2, b, "Cycle(330)")];
        for f in fresh {
            assert!(p1.sites.iter().all(|s| s.id != f), "new sites get fresh ids");
        }
        assert_eq!(p2.kept, 3);
        assert!(p2.removed.is_empty());
    }

    #[test]
    fn a_renamed_builtin_is_a_new_site_and_the_old_id_waits_to_be_freed() {
        let mut reg = SiteRegistry::default();
        let a = "void play(void) { _out(0, Cycle(440)); }";
        let p1 = plan_and_commit(&mut reg, a);
        let b = "void play(void) { _out(0, Tri(440)); }";
        let p2 = plan_and_commit(&mut reg, b);
        assert_eq!(p2.removed, vec![p1.sites[0].id]);
        assert_ne!(p2.sites[0].id, p1.sites[0].id);
        // Until released, the removed id is not handed out again.
        let c = "void play(void) { _out(0, Tri(440) + Phasor(1)); }";
        let p3 = reg.plan(c, &tokenize(c)).unwrap();
        assert!(p3.sites.iter().all(|s| s.id != p1.sites[0].id));
        reg.release(&p2.removed);
        let p4 = reg.plan(c, &tokenize(c)).unwrap();
        assert!(p4.sites.iter().any(|s| s.id == p1.sites[0].id));
    }

    #[test]
    fn arity_is_checked_per_builtin_with_nested_commas_ignored() {
        let ok = "x = Pulse(f(1, 2), g[3]) + Delay(a, (b, c)) + Cycle(440);";
        assert!(check_arity(ok, &tokenize(ok)).is_ok());
        let bad = "void play(void) {\n  float x = Phasor();\n}";
        let (line, col, msg) = check_arity(bad, &tokenize(bad)).unwrap_err();
        assert_eq!((line, col), (2, 13));
        assert_eq!(msg, "Phasor() takes 1 argument (freq), 0 given");
        let bad = "Onepole(x);";
        assert!(check_arity(bad, &tokenize(bad))
            .unwrap_err()
            .2
            .contains("takes 2 arguments (x, coefficient_or_cutoff), 1 given"));
    }

    #[test]
    fn arity_of_the_api_functions_names_them() {
        let ok = "void play(void) { _out(0, _gate(1) * _hz(_voices() - 1) + _note(0) + _velocity(2)); }";
        assert!(check_arity(ok, &tokenize(ok)).is_ok());
        let bad = "void play(void) {\n  _out(0, _gate());\n}";
        let (line, col, msg) = check_arity(bad, &tokenize(bad)).unwrap_err();
        assert_eq!((line, col, msg.as_str()), (2, 11, "_gate() takes 1 argument (voice), 0 given"));
        let bad = "float x = _voices(3);";
        assert_eq!(check_arity(bad, &tokenize(bad)).unwrap_err().2, "_voices() takes no arguments, 1 given");
        let bad = "_out(1);";
        assert!(check_arity(bad, &tokenize(bad)).unwrap_err().2.contains("takes 2 arguments (channel, value)"));
    }

    #[test]
    fn member_access_and_names_without_a_call_are_not_sites() {
        let src = "s.Cycle(1); p->Delay(2); float (*f)(int, float) = Cycle; Cycle (3);";
        let calls = find_calls(src, &tokenize(src));
        assert_eq!(calls.len(), 1);
    }
}
