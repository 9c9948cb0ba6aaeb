//! Drawing the explorer (ratatui) and its loop over terminal events (crossterm): a thin
//! view over [`super::view::App`], which holds every decision.

use anyhow::{Context, Result};
use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use strata_image::human_size;

use super::tree::Mark;
use super::view::{Action, App, Mode, Pane};

/// Set to draw the first frame and exit: what `benches/dive.sh` times.
pub const FIRST_FRAME_EXIT: &str = "STRATA_DIVE_FIRST_FRAME_EXIT";

/// Run the explorer on the terminal until the user quits; the terminal is restored
/// however it ends.
pub fn run(mut app: App) -> Result<()> {
    // https://no-color.org: set and not empty means no colours.
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let once = std::env::var_os(FIRST_FRAME_EXIT).is_some();
    let mut terminal = ratatui::try_init().context("set up the terminal")?;
    let result = (|| -> Result<()> {
        loop {
            terminal.draw(|f| draw(f, &mut app, color)).context("draw")?;
            if once {
                return Ok(());
            }
            // A resize needs nothing but the next draw, which fits the new size.
            if let Event::Key(k) = event::read().context("read the terminal")?
                && k.kind == KeyEventKind::Press
                && app.on_key(k) == Action::Quit
            {
                return Ok(());
            }
        }
    })();
    ratatui::restore();
    result
}

/// Styles, with or without colours.
struct Theme {
    color: bool,
}

impl Theme {
    fn mark(&self, m: Mark) -> Style {
        if !self.color {
            return Style::new();
        }
        match m {
            Mark::Unchanged => Style::new(),
            Mark::Added => Style::new().fg(Color::Green),
            Mark::Modified => Style::new().fg(Color::Yellow),
            Mark::Removed => Style::new().fg(Color::Red),
        }
    }

    fn title(&self, focused: bool) -> Style {
        match (focused, self.color) {
            (true, true) => Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            (true, false) => Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            (false, _) => Style::new().add_modifier(Modifier::BOLD),
        }
    }

    fn header(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    fn dim(&self) -> Style {
        if self.color { Style::new().fg(Color::DarkGray) } else { Style::new() }
    }

    fn selected(&self, focused: bool) -> Style {
        if focused { Style::new().add_modifier(Modifier::REVERSED) } else { Style::new().add_modifier(Modifier::BOLD) }
    }
}

fn block<'a>(title: &'a str, focused: bool, theme: &Theme) -> Block<'a> {
    Block::bordered().title(Span::styled(format!(" {title} "), theme.title(focused)))
}

/// Draw the whole screen.
pub fn draw(f: &mut Frame<'_>, app: &mut App, color: bool) {
    let theme = Theme { color };
    let [main, status] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(f.area());
    let [left, right] = Layout::horizontal([Constraint::Percentage(45), Constraint::Fill(1)]).areas(main);
    let layer_rows = app.analysis.layers.len() as u16 + 3;
    // The layers first, then the details, then the image: a short screen loses the last.
    let layers_height = layer_rows.max(4).min(left.height);
    let details_height = 7.min(left.height - layers_height);
    let [layers, details, image] =
        Layout::vertical([Constraint::Length(layers_height), Constraint::Length(details_height), Constraint::Fill(1)])
            .areas(left);
    draw_layers(f, app, layers, &theme);
    draw_layer_details(f, app, details, &theme);
    draw_image(f, app, image, &theme);
    draw_tree(f, app, right, &theme);
    draw_status(f, app, status, &theme);
    if app.mode == Mode::Help {
        draw_help(f, f.area(), &theme);
    }
}

fn draw_layers(f: &mut Frame<'_>, app: &mut App, area: Rect, theme: &Theme) {
    let focused = app.pane == Pane::Layers && app.mode == Mode::Normal;
    let title = if app.aggregated { "Layers (aggregated changes)" } else { "Layers" };
    let b = block(title, focused, theme);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let height = inner.height.saturating_sub(1) as usize;
    if app.layer < app.layer_offset {
        app.layer_offset = app.layer;
    } else if height > 0 && app.layer >= app.layer_offset + height {
        app.layer_offset = app.layer + 1 - height;
    }
    let mut lines = vec![Line::styled(format!("{:>3} {:>8}  Command", "Cmp", "Size"), theme.header())];
    for (i, l) in app.analysis.layers.iter().enumerate().skip(app.layer_offset).take(height) {
        let mut spans = vec![Span::raw(format!("{i:>3} {:>8}  ", human_size(l.bytes_added)))];
        if l.empty {
            spans.push(Span::styled("(empty) ", theme.dim()));
        }
        spans.push(Span::raw(one_line(&l.created_by)));
        let mut line = Line::from(spans);
        if i == app.layer {
            line = line.style(theme.selected(focused));
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn draw_layer_details(f: &mut Frame<'_>, app: &App, area: Rect, theme: &Theme) {
    let b = block("Layer Details", false, theme);
    let Some(l) = app.analysis.layers.get(app.layer) else {
        f.render_widget(b, area);
        return;
    };
    let label = |k: &'static str| Span::styled(k, theme.header());
    let lines = vec![
        Line::from(vec![label("Digest:  "), Span::raw(l.digest.to_string())]),
        Line::from(vec![
            label("Changes: "),
            Span::raw(format!(
                "{} added, {} modified, {} removed, {} wasted",
                l.paths_added,
                l.paths_modified,
                l.paths_removed,
                human_size(l.bytes_wasted)
            )),
        ]),
        Line::from(vec![label("Command: "), Span::raw(one_line(&l.created_by))]),
    ];
    f.render_widget(Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }).block(b), area);
}

fn draw_image(f: &mut Frame<'_>, app: &App, area: Rect, theme: &Theme) {
    let a = &app.analysis;
    let label = |k: &'static str| Span::styled(k, theme.header());
    let mut lines = vec![
        Line::from(vec![label("Image name: "), Span::raw(app.name.clone())]),
        Line::from(vec![label("Total Image size: "), Span::raw(human_size(a.size))]),
        Line::from(vec![label("Potential wasted space: "), Span::raw(human_size(a.bytes_wasted))]),
        Line::from(vec![label("Image efficiency score: "), Span::raw(format!("{:.0} %", a.efficiency * 100.0))]),
        Line::raw(""),
        Line::styled(format!("{:>5}  {:>11}  Path", "Count", "Total Space"), theme.header()),
    ];
    let room = area.height.saturating_sub(2 + lines.len() as u16) as usize;
    // The end of a path tells most: cut long ones at the front.
    let width = (area.width as usize).saturating_sub(2 + 20);
    for w in a.wasted_files.iter().take(room) {
        lines.push(Line::raw(format!("{:>5}  {:>11}  {}", w.writes, human_size(w.bytes_wasted), tail(&w.path, width))));
    }
    f.render_widget(Paragraph::new(lines).block(block("Image Details", false, theme)), area);
}

fn draw_tree(f: &mut Frame<'_>, app: &mut App, area: Rect, theme: &Theme) {
    let focused = app.pane == Pane::Tree && app.mode == Mode::Normal;
    let title = if app.aggregated { "Aggregated Contents" } else { "Current Layer Contents" };
    let b = block(title, focused, theme);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let filter_line = app.mode == Mode::Filter || !app.typing.is_empty();
    let [head, body, foot] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1), Constraint::Length(u16::from(filter_line))])
            .areas(inner);
    let t = &mut app.tree;
    t.set_height(body.height as usize);
    let header = if app.attributes {
        format!("  {:<10} {:>9} {:>8}  Filetree", "Permission", "UID:GID", "Size")
    } else {
        "  Filetree".to_owned()
    };
    f.render_widget(Paragraph::new(Line::styled(header, theme.header())), head);
    let mut lines = Vec::new();
    for (i, r) in t.rows.iter().enumerate().skip(t.offset).take(body.height as usize) {
        let n = &t.tree.nodes[r.node];
        let mut text = format!("{} ", n.mark.symbol());
        if app.attributes {
            let owner = format!("{}:{}", n.meta.uid, n.meta.gid);
            text.push_str(&format!("{} {owner:>9} {:>8}  ", n.meta.mode_string(), human_size(n.size)));
        }
        text.push_str(&r.prefix);
        if r.folded {
            text.push_str("⊕ ");
        }
        text.push_str(&n.name);
        if let Some(target) = &n.meta.link {
            text.push_str(" → ");
            text.push_str(target);
        }
        let mut style = theme.mark(n.mark);
        if i == t.cursor {
            style = style.patch(theme.selected(focused));
        }
        lines.push(Line::styled(text, style));
    }
    f.render_widget(Paragraph::new(lines), body);
    if filter_line {
        let cursor = if app.mode == Mode::Filter { "█" } else { "" };
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("Path Filter: ", theme.header()),
                Span::raw(format!("{}{cursor}", app.typing)),
            ])),
            foot,
        );
    }
}

fn draw_status(f: &mut Frame<'_>, app: &App, area: Rect, theme: &Theme) {
    let on = |b: bool| if b { "●" } else { "○" };
    let text = match (app.mode, app.pane) {
        (Mode::Filter, _) => "Type a path filter │ Enter Done │ Esc Clear".to_owned(),
        (Mode::Help, _) => "Any key: back".to_owned(),
        (_, Pane::Layers) => format!(
            "^C Quit │ Tab Switch view │ / Filter │ ^L {} Layer changes │ ^A {} Aggregated changes │ ? Help",
            on(!app.aggregated),
            on(app.aggregated)
        ),
        (_, Pane::Tree) => {
            let s = &app.tree.shown;
            format!(
                "^C Quit │ Tab Switch view │ Space Fold │ ^A {} Added │ ^R {} Removed │ ^M {} Modified │ ^U {} Unmodified │ ^B Attributes │ / Filter │ ? Help",
                on(s[Mark::Added.index()]),
                on(s[Mark::Removed.index()]),
                on(s[Mark::Modified.index()]),
                on(s[Mark::Unchanged.index()])
            )
        }
    };
    f.render_widget(Paragraph::new(Line::styled(text, theme.dim())), area);
}

/// The keys, as `?` shows them.
pub const HELP: &[(&str, &str)] = &[
    ("Tab", "switch between the layers and the file tree"),
    ("↑ ↓  k j", "move; PgUp PgDn (u d), Home End (g G)"),
    ("^L / ^A", "layers: the layer's changes / aggregated since the base"),
    ("Space", "file tree: fold or unfold a directory"),
    ("^Space", "file tree: fold or unfold all"),
    ("^A ^R ^M ^U", "file tree: show or hide added, removed, modified, unchanged"),
    ("^B", "file tree: show or hide attributes (mode, owner, size)"),
    ("/  ^F", "filter the file tree by path (Enter done, Esc clear)"),
    ("?", "this help"),
    ("q  ^C", "quit"),
];

fn draw_help(f: &mut Frame<'_>, area: Rect, theme: &Theme) {
    let w = area.width.min(76);
    let h = (HELP.len() as u16 + 5).min(area.height);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    let mut lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(k, what)| Line::from(vec![Span::styled(format!("{k:>12}  "), theme.header()), Span::raw(*what)]))
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled("+ added  ~ modified  - removed", theme.dim()));
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(block("Keys", true, theme)), r);
}

/// The last `width` characters of `s`, `…` first when cut.
fn tail(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width || width == 0 {
        return s.to_owned();
    }
    let mut out = String::from("…");
    out.extend(s.chars().skip(n - width + 1));
    out
}

/// A command on one line (history entries keep the Dockerfile's newlines).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;

    fn screen(app: &mut App, color: bool, w: u16, h: u16) -> (String, bool) {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, app, color)).unwrap();
        let buf = t.backend().buffer().clone();
        let text = (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_owned()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n");
        let coloured = buf.content.iter().any(|c| c.fg != Color::Reset || c.bg != Color::Reset);
        (text, coloured)
    }

    #[test]
    fn long_paths_keep_their_end() {
        assert_eq!(tail("/usr/share/locale/uk", 8), "…cale/uk");
        assert_eq!(tail("/etc", 8), "/etc");
    }

    #[test]
    fn the_screen_shows_layers_details_and_the_tree() {
        let mut app = crate::cmd::dive::view::tests::app();
        app.on_key(ratatui::crossterm::event::KeyEvent::from(ratatui::crossterm::event::KeyCode::Down));
        let (text, coloured) = screen(&mut app, true, 140, 30);
        for want in [
            "Layers",
            "RUN step 0",
            "(empty) RUN step 2",
            "Image efficiency score: 90 %",
            "/app/new",
            "Current Layer Contents",
            "+ drwxr-xr-x       0:0       4B  ├── app",
            "+ -rw-r--r--       0:0       4B  │   └── new",
            "~ -rw-r--r--       0:0       8B      └── passwd",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
        assert!(coloured);
        // NO_COLOR: the same screen, no colour anywhere; and a small one still draws.
        let (plain, coloured) = screen(&mut app, false, 140, 30);
        assert!(!coloured);
        assert!(plain.contains("+ -rw-r--r--       0:0       4B  │   └── new"), "{plain}");
        let (small, _) = screen(&mut app, false, 30, 8);
        assert!(small.contains("Layers"), "{small}");
        // Help.
        app.on_key(ratatui::crossterm::event::KeyEvent::from(ratatui::crossterm::event::KeyCode::Char('?')));
        let (help, _) = screen(&mut app, true, 100, 30);
        assert!(help.contains("fold or unfold a directory"), "{help}");
    }
}
