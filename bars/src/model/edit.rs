//! Editing a tree as a performer does with real bars: plug a new bar into a
//! free connector, pull a bar out (its subtree comes with it), turn a bar to
//! the next free connector of its parent. Every edit returns a new, valid
//! tree (or says why it cannot be done); bar order is kept, so a patch's
//! `_bar_freq(i)` for the bars that stay keeps meaning the same bar where it
//! can.

use super::connector::{Connector, Gender};
use super::interval::Interval;
use super::tree::{Bar, BarId, BarTree, Parent, TreeError, MAX_BARS, ROOT_CONNECTOR_GENDER};

/// What an edit cannot do.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EditError {
    #[error("there is no free connector there")]
    NoFreeConnector,
    #[error("a tree holds at most {MAX_BARS} bars")]
    Full,
    #[error("no such bar")]
    NoSuchBar,
    #[error(transparent)]
    Tree(#[from] TreeError),
}

/// The gender a connector of `parent` has.
fn gender_at(tree: &BarTree, parent: Parent) -> Gender {
    match parent {
        Parent::Root => ROOT_CONNECTOR_GENDER,
        Parent::Bar(_, c) => {
            let _ = tree;
            c.gender()
        }
    }
}

/// The connector a new bar plugs in by to mate with `at`: an end first
/// (W or E), so trees grow in lines unless turned.
fn mating(at: Gender) -> Connector {
    match at {
        Gender::Female => Connector::W,
        Gender::Male => Connector::E,
    }
}

/// The free connectors of `parent` (the root's, or a bar's other three), clockwise.
pub fn free_connectors(tree: &BarTree, parent: Option<BarId>) -> Vec<Parent> {
    match parent {
        None => {
            if tree.root_child().is_some() {
                Vec::new()
            } else {
                vec![Parent::Root]
            }
        }
        Some(id) => {
            let by = tree.bar(id).by;
            let children = tree.children(id);
            Connector::ALL
                .iter()
                .filter(|c| **c != by && children[c.index()].is_none())
                .map(|c| Parent::Bar(id, *c))
                .collect()
        }
    }
}

fn rebuild(tree: &BarTree, bars: Vec<Bar>, names: Vec<String>) -> Result<BarTree, EditError> {
    Ok(BarTree::new(tree.base_hz(), bars, names)?)
}

/// Plugs a new bar of `interval` into the first free connector of `parent`
/// (None: the root). Returns the tree and the new bar's id.
pub fn add_bar(tree: &BarTree, parent: Option<BarId>, interval: Interval) -> Result<(BarTree, BarId), EditError> {
    if tree.len() >= MAX_BARS {
        return Err(EditError::Full);
    }
    let at = *free_connectors(tree, parent).first().ok_or(EditError::NoFreeConnector)?;
    let mut bars = tree.bars().to_vec();
    let mut names: Vec<String> = tree.ids().map(|id| tree.name(id).to_string()).collect();
    bars.push(Bar { interval, parent: at, by: mating(gender_at(tree, at)), touched: false });
    let mut n = bars.len();
    while names.iter().any(|x| *x == format!("bar{n}")) {
        n += 1;
    }
    names.push(format!("bar{n}"));
    let id = BarId((bars.len() - 1) as u8);
    Ok((rebuild(tree, bars, names)?, id))
}

/// Pulls bar `id` out with everything plugged into it.
pub fn remove_bar(tree: &BarTree, id: BarId) -> Result<BarTree, EditError> {
    if id.index() >= tree.len() {
        return Err(EditError::NoSuchBar);
    }
    // The subtree: bars whose chain of parents reaches `id`.
    let gone: Vec<bool> = tree
        .ids()
        .map(|b| {
            let mut cur = Some(b);
            while let Some(c) = cur {
                if c == id {
                    return true;
                }
                cur = match tree.bar(c).parent {
                    Parent::Root => None,
                    Parent::Bar(p, _) => Some(p),
                };
            }
            false
        })
        .collect();
    // New ids for the bars that stay, in their old order.
    let mut new_id = vec![None; tree.len()];
    let mut next = 0u8;
    for (i, g) in gone.iter().enumerate() {
        if !g {
            new_id[i] = Some(BarId(next));
            next += 1;
        }
    }
    let mut bars = Vec::new();
    let mut names = Vec::new();
    for old in tree.ids().filter(|b| !gone[b.index()]) {
        let mut bar = *tree.bar(old);
        if let Parent::Bar(p, c) = bar.parent {
            bar.parent = Parent::Bar(new_id[p.index()].expect("a kept bar's parent is kept"), c);
        }
        bars.push(bar);
        names.push(tree.name(old).to_string());
    }
    rebuild(tree, bars, names)
}

/// Turns bar `id` to the next free connector of its parent (clockwise), as
/// a performer re-plugs a bar at another face; a bar alone on its parent
/// (the root, or a parent with no other free connector) stays where it is.
pub fn rotate_bar(tree: &BarTree, id: BarId) -> Result<BarTree, EditError> {
    if id.index() >= tree.len() {
        return Err(EditError::NoSuchBar);
    }
    let bar = *tree.bar(id);
    let Parent::Bar(p, current) = bar.parent else {
        return Ok(tree.clone());
    };
    let free = free_connectors(tree, Some(p));
    let start = Connector::ALL.iter().position(|c| *c == current).unwrap_or(0);
    // The bar plugs in by a connector of the other gender that holds none of
    // its own children: its current one if that still mates, else the other.
    let own = tree.children(id);
    let by_for = |at: Connector| {
        let wanted = match at.gender() {
            Gender::Female => Gender::Male,
            Gender::Male => Gender::Female,
        };
        std::iter::once(bar.by)
            .chain(Connector::ALL)
            .find(|c| c.gender() == wanted && (*c == bar.by || own[c.index()].is_none()))
    };
    let next = (1..4)
        .map(|k| Connector::ALL[(start + k) % 4])
        .filter(|c| free.contains(&Parent::Bar(p, *c)))
        .find_map(|c| by_for(c).map(|by| (c, by)));
    let Some((to, by)) = next else { return Ok(tree.clone()) };
    let mut bars = tree.bars().to_vec();
    bars[id.index()].parent = Parent::Bar(p, to);
    bars[id.index()].by = by;
    let names = tree.ids().map(|i| tree.name(i).to_string()).collect();
    rebuild(tree, bars, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_added_rotated_and_removed_as_on_the_instrument() {
        let t = BarTree::empty();
        let (t, a) = add_bar(&t, None, Interval::Fifth).unwrap();
        assert_eq!(t.len(), 1);
        assert!((t.frequency(a) - 660.0).abs() < 1e-9);
        assert_eq!(
            add_bar(&t, None, Interval::Fifth).unwrap_err(),
            EditError::NoFreeConnector,
            "the root takes one bar"
        );
        let (t, b) = add_bar(&t, Some(a), Interval::MajorThird).unwrap();
        let (t, c) = add_bar(&t, Some(b), Interval::Fourth).unwrap();
        assert_eq!(t.len(), 3);
        // Turning b moves it to another connector of a; the tree stays valid.
        let before = t.bar(b).parent;
        let t2 = rotate_bar(&t, b).unwrap();
        assert_ne!(t2.bar(b).parent, before);
        assert_eq!(t2.len(), 3);
        // Pulling b out takes c with it.
        let t3 = remove_bar(&t2, b).unwrap();
        assert_eq!(t3.len(), 1);
        assert_eq!(remove_bar(&t3, BarId(5)).unwrap_err(), EditError::NoSuchBar);
        let _ = c;
    }
}
