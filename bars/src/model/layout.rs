//! Where the bars lie in the plane, for drawing.
//!
//! A bar is a rectangle `length` long (log2 of its ratio, an octave being
//! `OCTAVE_LENGTH`) and `BAR_WIDTH` wide, running from its W end to its E end;
//! N is the face on the left of that direction, S the face on the right, each
//! connector in the middle of its face. Mating connectors face each other, so
//! every joint is a right angle or straight: end to end continues straight,
//! face to end turns 90 degrees, face to face lies alongside. The layout does
//! not check that bars overlap; real bars would collide, these are drawn.

use super::connector::Connector;
use super::tree::{BarTree, Parent};

/// Drawing length of an octave bar; other bars are log2(ratio) of it.
pub const OCTAVE_LENGTH: f64 = 1.0;
/// Drawing width of every bar.
pub const BAR_WIDTH: f64 = 0.08;

/// The direction a bar runs from its W end to its E end (y up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    East = 0,
    North = 1,
    West = 2,
    South = 3,
}

impl Direction {
    fn from_quarter_turns(q: i32) -> Direction {
        [Direction::East, Direction::North, Direction::West, Direction::South][q.rem_euclid(4) as usize]
    }

    fn quarter_turns(self) -> i32 {
        self as i32
    }

    /// Unit vector.
    pub fn vector(self) -> [f64; 2] {
        match self {
            Direction::East => [1.0, 0.0],
            Direction::North => [0.0, 1.0],
            Direction::West => [-1.0, 0.0],
            Direction::South => [0.0, -1.0],
        }
    }
}

/// One bar's place: its W end's centre, its direction and its length.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    pub start: [f64; 2],
    pub direction: Direction,
    pub length: f64,
}

impl Placement {
    /// Centre of the E end.
    pub fn end(&self) -> [f64; 2] {
        let v = self.direction.vector();
        [self.start[0] + v[0] * self.length, self.start[1] + v[1] * self.length]
    }

    /// Where a connector sits, and the quarter turns of its outward normal.
    pub fn connector(&self, c: Connector) -> ([f64; 2], i32) {
        let (local, normal) = local_connector(c, self.length);
        (add(self.start, rotate(local, self.direction.quarter_turns())), self.direction.quarter_turns() + normal)
    }
}

/// A connector's position in the bar's own frame (x along W->E, y toward N)
/// and its outward normal in quarter turns from +x.
fn local_connector(c: Connector, length: f64) -> ([f64; 2], i32) {
    match c {
        Connector::W => ([0.0, 0.0], 2),
        Connector::E => ([length, 0.0], 0),
        Connector::N => ([length / 2.0, BAR_WIDTH / 2.0], 1),
        Connector::S => ([length / 2.0, -BAR_WIDTH / 2.0], 3),
    }
}

fn rotate(v: [f64; 2], quarter_turns: i32) -> [f64; 2] {
    match quarter_turns.rem_euclid(4) {
        0 => v,
        1 => [-v[1], v[0]],
        2 => [-v[0], -v[1]],
        _ => [v[1], -v[0]],
    }
}

fn add(a: [f64; 2], b: [f64; 2]) -> [f64; 2] {
    [a[0] + b[0], a[1] + b[1]]
}

/// The root's connector is at the origin, facing east.
pub(super) fn place(tree: &BarTree) -> Vec<Placement> {
    let mut out = vec![Placement { start: [0.0, 0.0], direction: Direction::East, length: 0.0 }; tree.len()];
    for &id in tree.preorder() {
        let bar = tree.bar(id);
        let length = bar.interval.octaves() * OCTAVE_LENGTH;
        let (at, at_normal) = match bar.parent {
            Parent::Root => ([0.0, 0.0], 0),
            Parent::Bar(p, c) => out[p.index()].connector(c),
        };
        // The bar's connector must face the parent's: normals opposite.
        let (local, local_normal) = local_connector(bar.by, length);
        let turns = at_normal + 2 - local_normal;
        let start = add(at, rotate([-local[0], -local[1]], turns));
        out[id.index()] = Placement { start, direction: Direction::from_quarter_turns(turns), length };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bar, BarId, Interval};

    fn bar(interval: Interval, parent: Parent, by: Connector) -> Bar {
        Bar { interval, parent, by, touched: false }
    }

    #[test]
    fn end_to_end_continues_and_face_to_end_turns() {
        let tree = BarTree::new(
            440.0,
            vec![
                bar(Interval::Octave, Parent::Root, Connector::W),
                bar(Interval::Fifth, Parent::Bar(BarId(0), Connector::E), Connector::W),
                bar(Interval::Fourth, Parent::Bar(BarId(0), Connector::S), Connector::W),
            ],
            vec![],
        )
        .unwrap();
        let p = tree.layout();
        assert_eq!(p[0].direction, Direction::East);
        assert_eq!(p[0].end(), [1.0, 0.0]);
        assert_eq!(p[1].start, [1.0, 0.0]);
        assert_eq!(p[1].direction, Direction::East);
        // S faces down (south); a bar plugged by its W end runs south from it.
        assert_eq!(p[2].direction, Direction::South);
        assert_eq!(p[2].start, [0.5, -BAR_WIDTH / 2.0]);
    }
}
