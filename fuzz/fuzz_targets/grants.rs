//! Grants: pattern parsing never panics, what it accepts prints and re-parses to itself,
//! and the decision on a resource is always that of a grant covering it, the most specific
//! one, or no access when none covers it.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tokengate::{Action, Grant, Grants, Permission, Resource, ResourcePattern};

#[derive(Arbitrary, Debug)]
struct Input {
    grants: Vec<(String, u8)>,
    resource: String,
}

fn permission(byte: u8) -> Permission {
    match byte % 4 {
        0 => Permission::NoAccess,
        1 => Permission::ReadOnly,
        2 => Permission::ReadStage,
        _ => Permission::ReadWrite,
    }
}

fuzz_target!(|input: Input| {
    let mut parsed = Vec::new();
    for (text, level) in &input.grants {
        let Ok(pattern) = ResourcePattern::parse(text) else {
            continue;
        };
        assert_eq!(
            ResourcePattern::parse(&pattern.to_string()).as_ref(),
            Ok(&pattern),
            "a printed pattern parses to itself"
        );
        if let ResourcePattern::Exact(name) = &pattern {
            assert!(pattern.matches(name));
        }
        parsed.push(Grant::new(pattern, permission(*level)));
    }
    let Ok(grants) = Grants::new(parsed.clone()) else {
        return;
    };
    let decided = grants.permission_on(&input.resource);
    let covering: Vec<&Grant> = parsed
        .iter()
        .filter(|grant| grant.pattern.matches(&input.resource))
        .collect();
    if covering.is_empty() {
        assert_eq!(decided, Permission::NoAccess);
    } else {
        assert!(covering.iter().any(|grant| grant.permission == decided));
    }
    if let Some(exact) = covering
        .iter()
        .find(|grant| matches!(grant.pattern, ResourcePattern::Exact(_)))
    {
        assert_eq!(decided, exact.permission, "an exact grant beats every pattern");
    }
    let resource = Resource::new(input.resource.clone());
    for action in [Action::Read, Action::Stage, Action::Write] {
        assert_eq!(grants.allows(action, Some(&resource)), decided.allows(action));
    }
    // Each permission allows all that a weaker one does: a stage-only grant never writes,
    // and a grant that writes may stage.
    assert!(!decided.allows(Action::Write) || decided.allows(Action::Stage));
    assert!(!decided.allows(Action::Stage) || decided.allows(Action::Read));
    assert_eq!(
        grants.to_string().parse::<Grants>().as_ref(),
        Ok(&grants),
        "printed grants parse to themselves"
    );
});
