//! A frame's place (function, file, line) and how its function's name is spelled: what the
//! DWARF reader and the symbol tables both give, apart from either.

/// One function at an address: the innermost (an inlined one) first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Place {
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// A Rust name without its hash, a C++ name without its parameters and return type (as gdb
/// names a frame: `ns::Box<int>::get`), anything else as it is.
pub fn demangle(name: &str) -> String {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return format!("{d:#}");
    }
    if name.starts_with("_Z")
        && let Ok(sym) = cpp_demangle::Symbol::new(name)
        && let Ok(d) = sym.demangle_with_options(
            &cpp_demangle::DemangleOptions::new()
                .no_params()
                .no_return_type(),
        )
    {
        return gnu_spelling(&d);
    }
    name.to_string()
}

/// cpp_demangle's text as GNU's demangler (gdb, c++filt) spells it: an integer template
/// argument `(unsigned long)0` is `0ul`, and an empty parameter pack leaves no `, >`.
fn gnu_spelling(d: &str) -> String {
    const SUFFIXES: &[(&str, &str)] = &[
        ("(unsigned long long)", "ull"),
        ("(long long)", "ll"),
        ("(unsigned long)", "ul"),
        ("(long)", "l"),
        ("(unsigned int)", "u"),
        ("(int)", ""),
    ];
    let mut out = String::with_capacity(d.len());
    let mut rest = d;
    'outer: while !rest.is_empty() {
        for (cast, suffix) in SUFFIXES {
            if let Some(after) = rest.strip_prefix(cast) {
                let digits = after
                    .char_indices()
                    .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
                    .map_or(after.len(), |(i, _)| i);
                if digits > 0 && after[..digits].chars().any(|c| c.is_ascii_digit()) {
                    out.push_str(&after[..digits]);
                    out.push_str(suffix);
                    rest = &after[digits..];
                    continue 'outer;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out.replace(", >", ">")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            demangle("_ZN3std6thread5sleep17h0123456789abcdefE"),
            "std::thread::sleep"
        );
        assert_eq!(demangle("_ZN2ns6Client5fetchEv"), "ns::Client::fetch");
        // A function template: no return type either.
        assert_eq!(
            demangle("_ZN2ns3BoxIiE3getIlEET_i"),
            "ns::Box<int>::get<long>"
        );
        // Integer template arguments and an empty pack, as gdb writes them.
        assert_eq!(
            demangle(
                "_ZNSt6thread8_InvokerISt5tupleIJPFvvEEEE9_M_invokeIJLm0EEEEvSt12_Index_tupleIJXspT_EEE"
            ),
            "std::thread::_Invoker<std::tuple<void (*)()> >::_M_invoke<0ul>"
        );
        assert_eq!(
            demangle("_ZSt13__invoke_implIvPFvvEJEET_St14__invoke_otherOT0_DpOT1_"),
            "std::__invoke_impl<void, void (*)()>"
        );
        assert_eq!(demangle("poll"), "poll");
        assert_eq!(demangle("_Zbogus"), "_Zbogus");
    }
}
