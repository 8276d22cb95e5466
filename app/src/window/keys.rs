//! Keyboard input from xkbcommon (through sctk) to egui: the keys egui knows
//! by name, and text for what a key types.

use smithay_client_toolkit::seat::keyboard::{Keysym, Modifiers};

/// egui's key for an xkb keysym, if it has one.
pub fn egui_key(sym: Keysym) -> Option<egui::Key> {
    use egui::Key;
    Some(match sym {
        Keysym::Escape => Key::Escape,
        Keysym::Tab | Keysym::ISO_Left_Tab => Key::Tab,
        Keysym::BackSpace => Key::Backspace,
        Keysym::Return | Keysym::KP_Enter => Key::Enter,
        Keysym::space => Key::Space,
        Keysym::Insert => Key::Insert,
        Keysym::Delete | Keysym::KP_Delete => Key::Delete,
        Keysym::Home | Keysym::KP_Home => Key::Home,
        Keysym::End | Keysym::KP_End => Key::End,
        Keysym::Page_Up | Keysym::KP_Page_Up => Key::PageUp,
        Keysym::Page_Down | Keysym::KP_Page_Down => Key::PageDown,
        Keysym::Left | Keysym::KP_Left => Key::ArrowLeft,
        Keysym::Right | Keysym::KP_Right => Key::ArrowRight,
        Keysym::Up | Keysym::KP_Up => Key::ArrowUp,
        Keysym::Down | Keysym::KP_Down => Key::ArrowDown,
        Keysym::F1 => Key::F1,
        Keysym::F2 => Key::F2,
        Keysym::F3 => Key::F3,
        Keysym::F4 => Key::F4,
        Keysym::F5 => Key::F5,
        Keysym::F6 => Key::F6,
        Keysym::F7 => Key::F7,
        Keysym::F8 => Key::F8,
        Keysym::F9 => Key::F9,
        Keysym::F10 => Key::F10,
        Keysym::F11 => Key::F11,
        Keysym::F12 => Key::F12,
        Keysym::minus | Keysym::KP_Subtract => Key::Minus,
        Keysym::plus | Keysym::KP_Add => Key::Plus,
        Keysym::equal => Key::Equals,
        Keysym::slash | Keysym::KP_Divide => Key::Slash,
        Keysym::comma => Key::Comma,
        Keysym::period => Key::Period,
        Keysym::semicolon => Key::Semicolon,
        Keysym::bracketleft => Key::OpenBracket,
        Keysym::bracketright => Key::CloseBracket,
        s => {
            // Letters and digits by their name ("a" and "A" are both Key::A).
            let c = s.key_char()?;
            return egui::Key::from_name(&c.to_ascii_uppercase().to_string());
        }
    })
}

/// egui's modifiers from xkb's.
pub fn egui_modifiers(m: &Modifiers) -> egui::Modifiers {
    egui::Modifiers { alt: m.alt, ctrl: m.ctrl, shift: m.shift, mac_cmd: false, command: m.ctrl }
}

/// The text a key press types, if any: not with Ctrl or Alt held (those are
/// shortcuts), and not control characters (egui handles Enter, Tab and
/// Backspace as keys).
pub fn typed_text(utf8: Option<&str>, m: &Modifiers) -> Option<String> {
    let t = utf8?;
    if m.ctrl || m.alt || t.is_empty() || t.chars().any(|c| c.is_control()) {
        return None;
    }
    Some(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_text_map_to_egui() {
        assert_eq!(egui_key(Keysym::Return), Some(egui::Key::Enter));
        assert_eq!(egui_key(Keysym::a), Some(egui::Key::A));
        assert_eq!(egui_key(Keysym::A), Some(egui::Key::A));
        assert_eq!(egui_key(Keysym::_7), Some(egui::Key::Num7));
        assert_eq!(egui_key(Keysym::F11), Some(egui::Key::F11));
        let plain = Modifiers::default();
        let ctrl = Modifiers { ctrl: true, ..Default::default() };
        assert_eq!(typed_text(Some("x"), &plain).as_deref(), Some("x"));
        assert_eq!(typed_text(Some("x"), &ctrl), None, "Ctrl+X is a shortcut, not text");
        assert_eq!(typed_text(Some("\r"), &plain), None);
        assert!(egui_modifiers(&ctrl).command);
    }
}
