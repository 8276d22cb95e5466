//! The four connectors of a bar: N and W male, E and S female; N and S on the
//! faces, W and E at the ends.

use std::fmt;

/// One of a bar's four connectors, numbered clockwise from N.
///
/// Clockwise order matters: a bar primes (and reports) its other connectors
/// clockwise starting after the one its parent is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Connector {
    N = 0,
    E = 1,
    S = 2,
    W = 3,
}

/// A male connector only mates with a female one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gender {
    Male,
    Female,
}

/// The axis a connector is on: the faces (N/S) or the ends (E/W). The wire
/// word carries only the parent connector's axis; its gender follows from the
/// parent's connector, so the pair gives the connector exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Axis {
    /// N and S, on the bar's faces.
    Faces,
    /// E and W, at the bar's ends.
    Ends,
}

impl Connector {
    pub const ALL: [Connector; 4] = [Connector::N, Connector::E, Connector::S, Connector::W];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Connector {
        Connector::ALL[i % 4]
    }

    pub fn gender(self) -> Gender {
        match self {
            Connector::N | Connector::W => Gender::Male,
            Connector::E | Connector::S => Gender::Female,
        }
    }

    pub fn axis(self) -> Axis {
        match self {
            Connector::N | Connector::S => Axis::Faces,
            Connector::E | Connector::W => Axis::Ends,
        }
    }

    /// The connector of the given gender on the given axis.
    pub fn of(gender: Gender, axis: Axis) -> Connector {
        match (gender, axis) {
            (Gender::Male, Axis::Faces) => Connector::N,
            (Gender::Male, Axis::Ends) => Connector::W,
            (Gender::Female, Axis::Faces) => Connector::S,
            (Gender::Female, Axis::Ends) => Connector::E,
        }
    }

    /// The next connector clockwise.
    pub fn clockwise(self) -> Connector {
        Connector::from_index(self.index() + 1)
    }

    /// The other three connectors, clockwise, starting after this one: the
    /// order in which a bar primed through `self` primes and reports the rest.
    pub fn others_clockwise(self) -> [Connector; 3] {
        let a = self.clockwise();
        let b = a.clockwise();
        [a, b, b.clockwise()]
    }

    pub fn letter(self) -> char {
        ['N', 'E', 'S', 'W'][self.index()]
    }

    pub fn from_letter(c: char) -> Option<Connector> {
        match c.to_ascii_uppercase() {
            'N' => Some(Connector::N),
            'E' => Some(Connector::E),
            'S' => Some(Connector::S),
            'W' => Some(Connector::W),
            _ => None,
        }
    }
}

impl Gender {
    pub fn opposite(self) -> Gender {
        match self {
            Gender::Male => Gender::Female,
            Gender::Female => Gender::Male,
        }
    }
}

impl fmt::Display for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genders_and_axes_name_every_connector_once() {
        for c in Connector::ALL {
            assert_eq!(Connector::of(c.gender(), c.axis()), c);
        }
    }

    #[test]
    fn others_clockwise_skips_self() {
        assert_eq!(Connector::W.others_clockwise(), [Connector::N, Connector::E, Connector::S]);
        assert_eq!(Connector::N.others_clockwise(), [Connector::E, Connector::S, Connector::W]);
    }
}
