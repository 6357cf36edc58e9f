//! Sign-up names are the input strangers choose to look like someone else: whatever comes in is
//! refused with a reason, or accepted in a form that obeys the rules and maps to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moim::auth::{check_new_username, lookup_keys, skeletons_of, AuthError};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let keys = lookup_keys(s);
    assert!(keys.len() <= 2);
    match check_new_username(s) {
        Ok(name) => {
            let n = name.display.chars().count();
            assert!((2..=32).contains(&n));
            assert!(name.display.chars().any(char::is_alphanumeric));
            assert!(!name.display.chars().any(char::is_control));
            assert_eq!(
                keys.first(),
                Some(&name.key),
                "log-in finds what sign-up stored"
            );
            assert_eq!(skeletons_of(&name.display, &name.key), name.skeletons);
            let again = check_new_username(&name.display).expect("a valid name stays valid");
            assert_eq!(again, name);
        }
        Err(AuthError::Invalid { code, message }) => {
            assert_eq!(code, "invalid_username");
            assert!(!message.is_empty());
        }
        Err(other) => panic!("unexpected {other:?}"),
    }
});
