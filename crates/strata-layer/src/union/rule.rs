//! The union rules for one path, written once: what one thing a layer does at a path
//! ([`Event`]) does to what the lower layers left there ([`effect`]). [`super::Union`]
//! asks it at each whiteout and opaque marker of a layer it applies (on disk or on the
//! fold's tree in memory), [`crate::memtree::MemTree`] at each entry it creates, and
//! [`crate::MergedIndex`] composes it over every layer that names a path ([`Seen::after`])
//! to answer a lookup without a fold; so the three cannot disagree.

use super::Found;

/// One thing a layer does at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// `.wh.<name>`: a whiteout of the path.
    Whiteout,
    /// `<path>/.wh..wh..opq`: the path made an opaque directory.
    Opaque,
    /// An entry at the path: a directory or not.
    Entry(Found),
    /// An entry below the path (the path is one of its missing parents).
    Under,
}

/// What the layer did at the path before the event, which a whiteout must not undo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Made {
    /// The layer has an entry at the path.
    pub(crate) entry: bool,
    /// The layer has an entry below the path.
    pub(crate) under: bool,
}

/// What an event does to what is at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// What is there stays as it is.
    Keep,
    /// What is there goes, with everything under it.
    Delete,
    /// The directory there stays (its metadata too); what the lower layers put in it
    /// goes, what this layer put there stays.
    ClearLower,
    /// A new, empty directory of this layer (mode 0755, 0:0) replaces what is there.
    MakeDir,
    /// The entry replaces what is there, with everything under it.
    Replace,
    /// The directory there stays with its contents and takes the entry's metadata (and
    /// layer).
    Merge,
}

/// What `event` of a layer does at a path where the lower layers (and the layer's
/// earlier entries) left `lower` (`None`: nothing), the layer having done `made` there
/// already.
pub(crate) fn effect(lower: Option<Found>, event: Event, made: Made) -> Effect {
    match (event, lower) {
        (_, None) => match event {
            Event::Whiteout => Effect::Keep,
            Event::Opaque | Event::Under => Effect::MakeDir,
            Event::Entry(_) => Effect::Replace,
        },
        // A whiteout deletes what lower layers put there, never what this layer did: a
        // directory it declared or put things in keeps this layer's part.
        (Event::Whiteout, Some(Found::Dir)) if made.entry || made.under => Effect::ClearLower,
        (Event::Whiteout, _) if made.entry => Effect::Keep,
        (Event::Whiteout, _) => Effect::Delete,
        (Event::Opaque, Some(Found::Dir)) => Effect::ClearLower,
        (Event::Opaque, Some(Found::Other)) => Effect::MakeDir,
        (Event::Entry(Found::Dir), Some(Found::Dir)) => Effect::Merge,
        (Event::Entry(_), _) => Effect::Replace,
        (Event::Under, Some(Found::Dir)) => Effect::Keep,
        // A missing parent over what is not a directory: the tree resolves it (a symlink
        // is followed, a file refused); what is at the path does not change.
        (Event::Under, Some(Found::Other)) => Effect::Keep,
    }
}

/// What one layer does at one path, all of it: what [`Seen::after`] composes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Says {
    /// It has an entry at the path: a directory or not.
    pub(crate) entry: Option<Found>,
    /// It has entries below the path.
    pub(crate) under: bool,
    /// It whites the path out.
    pub(crate) whiteout: bool,
    /// It makes the path an opaque directory.
    pub(crate) opaque: bool,
}

/// What is at a path after some layers, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Nothing.
    Nothing,
    /// A directory: the layer that made it (the last that declared it, else the first
    /// that needed it), and the lowest layer whose entries below it show.
    Dir { layer: usize, floor: usize },
    /// Anything else, made by `layer`.
    Other { layer: usize },
}

impl Seen {
    fn found(self) -> Option<Found> {
        match self {
            Seen::Nothing => None,
            Seen::Dir { .. } => Some(Found::Dir),
            Seen::Other { .. } => Some(Found::Other),
        }
    }

    /// What is at the path after layer `layer` does `says` there, over `self`: its
    /// events in one order (whiteout, opaque marker, entry, entries below), which for
    /// the layers [`crate::MergedIndex`] answers gives what any order of the tar gives.
    pub(crate) fn after(self, layer: usize, says: Says) -> Seen {
        let mut seen = self;
        if says.whiteout {
            seen = seen.then(layer, Event::Whiteout, Made::default());
        }
        if says.opaque {
            seen = seen.then(layer, Event::Opaque, Made::default());
        }
        if let Some(k) = says.entry {
            seen = seen.then(layer, Event::Entry(k), Made::default());
        }
        if says.under {
            seen = seen.then(layer, Event::Under, Made { entry: says.entry.is_some(), under: false });
        }
        seen
    }

    /// What is at the path after `event` of layer `layer` ([`effect`]).
    fn then(self, layer: usize, event: Event, made: Made) -> Seen {
        match effect(self.found(), event, made) {
            Effect::Keep => self,
            Effect::Delete => Seen::Nothing,
            Effect::ClearLower => match self {
                Seen::Dir { layer: made_by, .. } => Seen::Dir { layer: made_by, floor: layer },
                _ => Seen::Dir { layer, floor: layer },
            },
            Effect::MakeDir => Seen::Dir { layer, floor: layer },
            Effect::Replace => match event {
                Event::Entry(Found::Other) => Seen::Other { layer },
                _ => Seen::Dir { layer, floor: layer },
            },
            Effect::Merge => match self {
                Seen::Dir { floor, .. } => Seen::Dir { layer, floor },
                _ => Seen::Dir { layer, floor: layer },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_as_a_table() {
        use Effect::*;
        let (dir, other) = (Some(Found::Dir), Some(Found::Other));
        let none = Made::default();
        let own = Made { entry: true, under: false };
        let below = Made { entry: false, under: true };
        let cases = [
            (None, Event::Whiteout, none, Keep),
            (other, Event::Whiteout, none, Delete),
            (dir, Event::Whiteout, none, Delete),
            (dir, Event::Whiteout, own, ClearLower),
            (dir, Event::Whiteout, below, ClearLower),
            (other, Event::Whiteout, own, Keep),
            (None, Event::Opaque, none, MakeDir),
            (other, Event::Opaque, none, MakeDir),
            (dir, Event::Opaque, none, ClearLower),
            (dir, Event::Entry(Found::Dir), none, Merge),
            (other, Event::Entry(Found::Dir), none, Replace),
            (dir, Event::Entry(Found::Other), none, Replace),
            (None, Event::Under, none, MakeDir),
            (dir, Event::Under, none, Keep),
        ];
        for (lower, event, made, want) in cases {
            assert_eq!(effect(lower, event, made), want, "{lower:?} {event:?} {made:?}");
        }
    }

    #[test]
    fn composed_over_layers() {
        let says = |entry, under, whiteout, opaque| Says { entry, under, whiteout, opaque };
        let dir = says(Some(Found::Dir), false, false, false);
        let file = says(Some(Found::Other), false, false, false);
        let under = says(None, true, false, false);
        let wh = says(None, false, true, false);
        let opq = says(None, false, false, true);
        let s = Seen::Nothing.after(0, under);
        assert_eq!(s, Seen::Dir { layer: 0, floor: 0 });
        // Declared later: its layer; its content still shows from below.
        assert_eq!(s.after(1, dir), Seen::Dir { layer: 1, floor: 0 });
        // Needed again: the first that needed it.
        assert_eq!(s.after(1, under), Seen::Dir { layer: 0, floor: 0 });
        assert_eq!(s.after(1, opq), Seen::Dir { layer: 0, floor: 1 });
        assert_eq!(s.after(1, wh), Seen::Nothing);
        assert_eq!(s.after(1, wh).after(2, under), Seen::Dir { layer: 2, floor: 2 });
        assert_eq!(s.after(1, file), Seen::Other { layer: 1 });
        assert_eq!(s.after(1, file).after(2, dir), Seen::Dir { layer: 2, floor: 2 });
        assert_eq!(s.after(1, says(Some(Found::Dir), true, false, true)), Seen::Dir { layer: 1, floor: 1 });
    }
}
