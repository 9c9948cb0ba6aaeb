//! The explorer's state, apart from drawing: which layer is selected, the compare mode,
//! the file tree's rows as shown (folded directories, the mark filters, the path
//! filter), the cursors, and what each key does to them.

use std::collections::HashSet;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use strata_image::ImageAnalysis;
use strata_layer::Changes;

use super::tree::{FileTree, Mark};

/// The pane that has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Layers,
    Tree,
}

/// What the keys are typed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing the path filter.
    Filter,
    /// The help screen.
    Help,
}

/// What the loop does after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Quit,
}

/// One line of the file tree pane.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Node of the [`FileTree`].
    pub node: usize,
    /// The tree lines before the name (`│   ├── `).
    pub prefix: String,
    /// A folded directory.
    pub folded: bool,
}

/// The file tree as shown.
pub struct TreeView {
    pub tree: FileTree,
    /// Folded directories, by path: they stay folded from layer to layer.
    folded: HashSet<String>,
    /// Which marks are shown, by [`Mark::index`].
    pub shown: [bool; 4],
    /// Paths shown contain this (with their directories); empty: all.
    pub filter: String,
    pub rows: Vec<Row>,
    pub cursor: usize,
    /// First row on screen.
    pub offset: usize,
    /// Rows the pane has room for (set when drawn).
    pub height: usize,
}

impl TreeView {
    pub fn new(tree: FileTree) -> TreeView {
        let mut v = TreeView {
            tree,
            folded: HashSet::new(),
            shown: [true; 4],
            filter: String::new(),
            rows: Vec::new(),
            cursor: 0,
            offset: 0,
            height: 20,
        };
        v.refresh();
        v
    }

    /// The path under the cursor.
    pub fn current_path(&self) -> Option<&str> {
        self.rows.get(self.cursor).map(|r| self.tree.nodes[r.node].path.as_str())
    }

    /// Show another tree, the cursor on the same path when it has it.
    pub fn set_tree(&mut self, tree: FileTree) {
        let at = self.current_path().map(str::to_owned);
        self.tree = tree;
        self.refresh_at(at.as_deref());
    }

    /// Rebuild the rows, the cursor staying on its path when still shown.
    fn refresh(&mut self) {
        let at = self.current_path().map(str::to_owned);
        self.refresh_at(at.as_deref());
    }

    fn refresh_at(&mut self, at: Option<&str>) {
        let nodes = &self.tree.nodes;
        // Whether each node is shown: its mark is, and its path matches, or something
        // under it is shown. Children come after their parent, so go backwards.
        let mut visible = vec![false; nodes.len()];
        for i in (1..nodes.len()).rev() {
            let n = &nodes[i];
            let mark = if n.inherited { Mark::Unchanged } else { n.mark };
            let own = self.shown[mark.index()] && (self.filter.is_empty() || n.path.contains(&self.filter));
            visible[i] = own || n.children.iter().any(|&c| visible[c]);
        }
        let mut rows = Vec::new();
        emit(nodes, &visible, &self.folded, 0, "", &mut rows);
        self.rows = rows;
        self.cursor = at
            .and_then(|p| self.rows.iter().position(|r| self.tree.nodes[r.node].path == p))
            .unwrap_or(self.cursor)
            .min(self.rows.len().saturating_sub(1));
        self.scroll();
    }

    /// Keep the cursor on screen.
    fn scroll(&mut self) {
        let h = self.height.max(1);
        if self.cursor < self.offset {
            self.offset = self.cursor;
        } else if self.cursor >= self.offset + h {
            self.offset = self.cursor + 1 - h;
        }
        self.offset = self.offset.min(self.rows.len().saturating_sub(h));
    }

    /// The rows the pane has room for changed.
    pub fn set_height(&mut self, h: usize) {
        self.height = h.max(1);
        self.scroll();
    }

    pub fn move_by(&mut self, delta: isize) {
        let last = self.rows.len().saturating_sub(1);
        self.cursor = self.cursor.saturating_add_signed(delta).min(last);
        self.scroll();
    }

    /// Space: fold or unfold the directory under the cursor.
    pub fn toggle_fold(&mut self) {
        let Some(r) = self.rows.get(self.cursor) else { return };
        let n = &self.tree.nodes[r.node];
        if !n.meta.is_dir() || n.children.is_empty() {
            return;
        }
        let p = n.path.clone();
        if !self.folded.remove(&p) {
            self.folded.insert(p);
        }
        self.refresh();
    }

    /// Ctrl-Space: fold every directory, or unfold all when some are folded.
    pub fn toggle_fold_all(&mut self) {
        if self.folded.is_empty() {
            self.folded = self
                .tree
                .nodes
                .iter()
                .filter(|n| n.meta.is_dir() && !n.children.is_empty())
                .map(|n| n.path.clone())
                .collect();
            self.folded.remove("");
        } else {
            self.folded.clear();
        }
        self.refresh();
    }

    /// Show or hide the paths with `mark`.
    pub fn toggle_mark(&mut self, mark: Mark) {
        self.shown[mark.index()] = !self.shown[mark.index()];
        self.refresh();
    }

    pub fn set_filter(&mut self, filter: &str) {
        self.filter = filter.to_owned();
        self.refresh();
    }
}

/// Push the shown children of `node`, each followed by its subtree unless folded
/// (recursion as deep as paths are: bounded by the path length limit of the reader).
fn emit(
    nodes: &[super::tree::Node],
    visible: &[bool],
    folded: &HashSet<String>,
    node: usize,
    indent: &str,
    rows: &mut Vec<Row>,
) {
    let kids: Vec<usize> = nodes[node].children.iter().copied().filter(|&c| visible[c]).collect();
    for (k, &c) in kids.iter().enumerate() {
        let last = k + 1 == kids.len();
        let f = nodes[c].meta.is_dir() && folded.contains(&nodes[c].path);
        rows.push(Row {
            node: c, prefix: format!("{indent}{}", if last { "└── " } else { "├── " }), folded: f
        });
        if !f {
            emit(nodes, visible, folded, c, &format!("{indent}{}", if last { "    " } else { "│   " }), rows);
        }
    }
}

/// The whole explorer.
pub struct App {
    pub name: String,
    pub analysis: ImageAnalysis,
    changes: Vec<Changes>,
    pub layer: usize,
    /// Compare with the base layer (dive's "aggregated changes") instead of the layer
    /// below.
    pub aggregated: bool,
    pub pane: Pane,
    pub mode: Mode,
    /// The path filter being typed.
    pub typing: String,
    /// File attributes (mode, owner, size) shown beside the names.
    pub attributes: bool,
    pub tree: TreeView,
    /// First layer row on screen.
    pub layer_offset: usize,
}

impl App {
    pub fn new(name: String, analysis: ImageAnalysis, changes: Vec<Changes>) -> App {
        let tree = TreeView::new(FileTree::at(&changes, 0, false));
        App {
            name,
            analysis,
            changes,
            layer: 0,
            aggregated: false,
            pane: Pane::Layers,
            mode: Mode::Normal,
            typing: String::new(),
            attributes: true,
            tree,
            layer_offset: 0,
        }
    }

    fn show_layer(&mut self, layer: usize) {
        let last = self.analysis.layers.len().saturating_sub(1);
        let layer = layer.min(last);
        if layer != self.layer || self.changes.is_empty() {
            self.layer = layer;
        }
        self.tree.set_tree(FileTree::at(&self.changes, self.layer, self.aggregated));
    }

    fn set_aggregated(&mut self, on: bool) {
        if self.aggregated != on {
            self.aggregated = on;
            self.show_layer(self.layer);
        }
    }

    /// What `key` does.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        match self.mode {
            Mode::Help => {
                self.mode = Mode::Normal;
                return if key.code == KeyCode::Char('q') { Action::Quit } else { Action::Continue };
            }
            Mode::Filter => {
                match key.code {
                    KeyCode::Enter => self.mode = Mode::Normal,
                    KeyCode::Esc => {
                        self.typing.clear();
                        self.mode = Mode::Normal;
                    }
                    KeyCode::Backspace => {
                        self.typing.pop();
                    }
                    KeyCode::Char(c) if !ctrl => self.typing.push(c),
                    _ => return Action::Continue,
                }
                let typed = self.typing.clone();
                self.tree.set_filter(&typed);
                return Action::Continue;
            }
            Mode::Normal => {}
        }
        let page = self.tree.height.max(2) as isize - 1;
        match (key.code, ctrl) {
            (KeyCode::Char('q'), false) => return Action::Quit,
            (KeyCode::Tab | KeyCode::BackTab, _) => {
                self.pane = if self.pane == Pane::Layers { Pane::Tree } else { Pane::Layers };
            }
            (KeyCode::Char('?'), _) => self.mode = Mode::Help,
            (KeyCode::Char('/'), false) | (KeyCode::Char('f'), true) => {
                self.mode = Mode::Filter;
                self.pane = Pane::Tree;
            }
            (KeyCode::Char('b'), true) => self.attributes = !self.attributes,
            (KeyCode::Up | KeyCode::Char('k'), false) => self.move_by(-1),
            (KeyCode::Down | KeyCode::Char('j'), false) => self.move_by(1),
            (KeyCode::PageUp, _) | (KeyCode::Char('u'), false) => self.move_by(-page),
            (KeyCode::PageDown, _) | (KeyCode::Char('d'), false) => self.move_by(page),
            (KeyCode::Home | KeyCode::Char('g'), false) => self.move_by(isize::MIN / 2),
            (KeyCode::End | KeyCode::Char('G'), false) => self.move_by(isize::MAX / 2),
            _ if self.pane == Pane::Layers => match (key.code, ctrl) {
                (KeyCode::Char('l'), true) => self.set_aggregated(false),
                (KeyCode::Char('a'), true) => self.set_aggregated(true),
                _ => {}
            },
            // Ctrl-M is Enter on a terminal, as in dive; Ctrl-Space is NUL.
            _ => match (key.code, ctrl) {
                (KeyCode::Char(' '), false) => self.tree.toggle_fold(),
                (KeyCode::Char(' ') | KeyCode::Null, _) => self.tree.toggle_fold_all(),
                (KeyCode::Char('a'), true) => self.tree.toggle_mark(Mark::Added),
                (KeyCode::Char('r'), true) => self.tree.toggle_mark(Mark::Removed),
                (KeyCode::Char('m'), true) | (KeyCode::Enter, _) => self.tree.toggle_mark(Mark::Modified),
                (KeyCode::Char('u'), true) => self.tree.toggle_mark(Mark::Unchanged),
                _ => {}
            },
        }
        Action::Continue
    }

    fn move_by(&mut self, delta: isize) {
        match self.pane {
            Pane::Tree => self.tree.move_by(delta),
            Pane::Layers => {
                let target = self.layer.saturating_add_signed(delta);
                if target.min(self.analysis.layers.len().saturating_sub(1)) != self.layer {
                    self.show_layer(target);
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use strata_layer::{Changes, LayerSource, MergeOptions, MergedTree};

    use super::*;

    /// One layer entry: a directory (`name/`), a file and its bytes.
    pub type E<'a> = (&'a str, &'a [u8]);

    fn tar(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            if let Some(dir) = path.strip_suffix('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, dir, &[][..]).unwrap();
            } else {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, *data).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    /// The changes of real layers, folded by the library.
    pub fn changes(layers: &[&[E<'_>]]) -> Vec<Changes> {
        let blobs: Vec<Vec<u8>> = layers.iter().map(|l| tar(l)).collect();
        let sources = blobs.iter().enumerate().map(|(i, b)| LayerSource::new(format!("layer {i}"), &b[..]));
        MergedTree::build(sources, &MergeOptions::default().changes(true)).unwrap().layer_changes().to_vec()
    }

    /// Base: etc/passwd, bin/sh, bin/ls; layer 1 edits passwd and adds app/new; layer 2
    /// removes app/new and bin/ls.
    pub fn three() -> Vec<Changes> {
        changes(&[
            &[("etc/", b""), ("etc/passwd", b"root"), ("bin/", b""), ("bin/sh", b"sh"), ("bin/ls", b"ls")],
            &[("etc/passwd", b"root\napp"), ("app/", b""), ("app/new", b"new!")],
            &[("app/.wh.new", b""), ("bin/.wh.ls", b"")],
        ])
    }

    /// Each row as `mark prefix name`.
    fn shown(v: &TreeView) -> Vec<String> {
        v.rows
            .iter()
            .map(|r| {
                let n = &v.tree.nodes[r.node];
                format!("{}{}{}{}", n.mark.symbol(), r.prefix, n.name, if r.folded { "+" } else { "" })
            })
            .collect()
    }

    #[test]
    fn each_layer_marks_what_it_changed() {
        let c = three();
        let v = TreeView::new(FileTree::at(&c, 0, false));
        assert_eq!(shown(&v), ["+├── bin", "+│   ├── ls", "+│   └── sh", "+└── etc", "+    └── passwd"]);
        let v = TreeView::new(FileTree::at(&c, 1, false));
        assert_eq!(
            shown(&v),
            ["+├── app", "+│   └── new", " ├── bin", " │   ├── ls", " │   └── sh", "~└── etc", "~    └── passwd"]
        );
        let v = TreeView::new(FileTree::at(&c, 2, false));
        assert_eq!(
            shown(&v),
            ["~├── app", "-│   └── new", "~├── bin", "-│   ├── ls", " │   └── sh", " └── etc", "     └── passwd"]
        );
        // Aggregated: everything since the base; app/new came and went.
        let v = TreeView::new(FileTree::at(&c, 2, true));
        assert_eq!(shown(&v), ["+├── app", "~├── bin", "-│   ├── ls", " │   └── sh", "~└── etc", "~    └── passwd"]);
        // Sizes: files', and directories' contents on their side.
        let t = FileTree::at(&c, 2, false);
        let size = |p: &str| t.nodes[t.find(p).unwrap()].size;
        assert_eq!((size("etc/passwd"), size("etc"), size("bin"), size("app")), (8, 8, 2, 0));
    }

    #[test]
    fn folding_filters_and_the_cursor() {
        let c = three();
        let mut v = TreeView::new(FileTree::at(&c, 2, false));
        v.move_by(2);
        assert_eq!(v.current_path(), Some("bin"));
        v.toggle_fold();
        assert_eq!(shown(&v), ["~├── app", "-│   └── new", "~├── bin+", " └── etc", "     └── passwd"]);
        // Folds stay from layer to layer, and the cursor stays on its path.
        v.set_tree(FileTree::at(&c, 1, false));
        assert_eq!(v.current_path(), Some("bin"));
        assert_eq!(shown(&v)[2], " ├── bin+");
        v.toggle_fold();
        v.set_tree(FileTree::at(&c, 2, false));
        // Hiding unchanged keeps the directories of what is shown; a directory marked
        // for its contents is unchanged itself.
        v.toggle_mark(Mark::Unchanged);
        assert_eq!(shown(&v), ["~├── app", "-│   └── new", "~└── bin", "-    └── ls"]);
        v.toggle_mark(Mark::Removed);
        assert!(shown(&v).is_empty(), "{:?}", shown(&v));
        v.toggle_mark(Mark::Removed);
        v.toggle_mark(Mark::Unchanged);
        // The path filter keeps matches and their directories.
        v.set_filter("pass");
        assert_eq!(shown(&v), [" └── etc", "     └── passwd"]);
        assert_eq!(v.cursor, 0);
        v.set_filter("");
        v.toggle_fold_all();
        assert_eq!(shown(&v), ["~├── app+", "~├── bin+", " └── etc+"]);
        v.toggle_fold_all();
        assert_eq!(v.rows.len(), 7);
        // The cursor stays on screen.
        v.set_height(3);
        v.move_by(100);
        assert_eq!((v.cursor, v.offset), (6, 4));
        v.move_by(-100);
        assert_eq!((v.cursor, v.offset), (0, 0));
    }

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    pub fn app() -> App {
        let c = three();
        let layers = c.len();
        let analysis = ImageAnalysis {
            layers: (0..layers)
                .map(|i| strata_image::LayerAnalysis {
                    digest: strata_spec::Digest::sha256_of(&[i as u8]),
                    diff_id: strata_spec::Digest::sha256_of(&[i as u8]),
                    size: 100,
                    uncompressed_size: 1000,
                    files: 1,
                    whiteouts: 0,
                    bytes_added: 10,
                    bytes_wasted: 0,
                    created_by: format!("RUN step {i}"),
                    paths_added: 1,
                    paths_modified: 0,
                    paths_removed: 0,
                    empty: i == 2,
                })
                .collect(),
            size: 300,
            bytes_added: 30,
            bytes_wasted: 4,
            efficiency: 0.9,
            paths: 5,
            files: 2,
            user_bytes_added: 20,
            user_wasted_percent: 0.2,
            wasted_files: vec![strata_image::WastedPath {
                path: "/app/new".into(),
                bytes_wasted: 4,
                writes: 1,
                layers: vec![1],
            }],
        };
        App::new("test:1".into(), analysis, c)
    }

    #[test]
    fn keys_as_dive_users_know_them() {
        let mut a = app();
        assert_eq!((a.pane, a.layer), (Pane::Layers, 0));
        // Down in the layers pane selects the next layer and shows its tree.
        assert_eq!(a.on_key(key(KeyCode::Down)), Action::Continue);
        assert_eq!(a.layer, 1);
        assert_eq!(a.on_key(key(KeyCode::Char('j'))), Action::Continue);
        assert_eq!(a.layer, 2);
        a.on_key(key(KeyCode::Char('j')));
        assert_eq!(a.layer, 2);
        a.on_key(key(KeyCode::Char('k')));
        assert_eq!(a.layer, 1);
        assert!(a.tree.tree.nodes.iter().any(|n| n.path == "app/new" && n.mark == Mark::Added));
        // Aggregated and back.
        a.on_key(ctrl('a'));
        assert!(a.aggregated);
        a.on_key(ctrl('l'));
        assert!(!a.aggregated);
        // Tab to the tree: j moves the tree's cursor, ctrl-u hides unchanged.
        a.on_key(key(KeyCode::Tab));
        assert_eq!(a.pane, Pane::Tree);
        // The tree's cursor stayed on its path (bin) from layer to layer.
        assert_eq!(a.tree.current_path(), Some("bin"));
        a.on_key(key(KeyCode::Char('j')));
        assert_eq!((a.layer, a.tree.current_path()), (1, Some("bin/ls")));
        a.on_key(ctrl('u'));
        assert!(!a.tree.shown[Mark::Unchanged.index()]);
        a.on_key(ctrl('u'));
        // ctrl-m arrives as Enter.
        a.on_key(key(KeyCode::Enter));
        assert!(!a.tree.shown[Mark::Modified.index()]);
        a.on_key(key(KeyCode::Enter));
        // `/` types a filter; Esc clears it.
        a.on_key(key(KeyCode::Char('/')));
        assert_eq!(a.mode, Mode::Filter);
        for ch in "new".chars() {
            a.on_key(key(KeyCode::Char(ch)));
        }
        assert_eq!(a.tree.rows.len(), 2);
        // q is text while typing, not quit.
        assert_eq!(a.on_key(key(KeyCode::Char('q'))), Action::Continue);
        a.on_key(key(KeyCode::Backspace));
        a.on_key(key(KeyCode::Enter));
        assert_eq!((a.mode, a.tree.filter.as_str()), (Mode::Normal, "new"));
        a.on_key(key(KeyCode::Char('/')));
        a.on_key(key(KeyCode::Esc));
        assert_eq!(a.tree.rows.len(), 7);
        // Help, any key back; q and ctrl-c quit.
        a.on_key(key(KeyCode::Char('?')));
        assert_eq!(a.mode, Mode::Help);
        a.on_key(key(KeyCode::Char('x')));
        assert_eq!(a.mode, Mode::Normal);
        assert_eq!(a.on_key(key(KeyCode::Char('q'))), Action::Quit);
        assert_eq!(a.on_key(ctrl('c')), Action::Quit);
    }
}
