//! Generating a token: the form (what `npm token create` offers, its messages next to
//! each field) and the `POST` that checks the password (and code) and makes the token.

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use tokengate::{Authenticated, CidrList, Permission};
use zeroize::Zeroizing;

use super::{has_2fa, manager};
use crate::controllers::{tokens, users};
use crate::error::ApiError;
use crate::security::passwords::Standing;
use crate::state::{AppState, ClientAddress};
use crate::tfa;
use crate::web::layout::{
    api_error_page, field_error, layout, page_response, redirect, text_field,
};
use crate::web::session::Secret;
use crate::web::{ShownToken, WebState, prune, random_key};

#[derive(Deserialize, Default)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// `read-only`, `read-write` or `granular`.
    #[serde(default)]
    permission: String,
    #[serde(default)]
    packages: String,
    #[serde(default)]
    scopes: String,
    /// For granular tokens: `read-only` or `read-write`.
    #[serde(default)]
    granular_permission: String,
    #[serde(default)]
    cidr: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    bypass_2fa: Option<String>,
    #[serde(default)]
    password: Secret,
    #[serde(default)]
    otp: Secret,
}

/// Errors by field name (`general` for the form as a whole).
type Errors = std::collections::BTreeMap<&'static str, String>;

/// Which field an error message from the token API is about.
fn field_of(message: &str) -> &'static str {
    let lower = message.to_ascii_lowercase();
    if lower.contains("cidr") {
        "cidr"
    } else if lower.starts_with("expires") || lower.contains("expiry") {
        "expires"
    } else if lower.starts_with("packages_and_scopes") || lower.starts_with("readonly") {
        "permission"
    } else if lower.starts_with("packages") || lower.contains("cover no package") {
        "packages"
    } else if lower.starts_with("scopes") {
        "scopes"
    } else if lower.contains("one-time password") || lower.contains("recovery code") {
        "otp"
    } else if lower.contains("password") {
        "password"
    } else if lower.starts_with("invalid name") {
        "name"
    } else if lower.starts_with("invalid description") {
        "description"
    } else {
        "general"
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\r', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The request `npm token create` would send for this form.
fn create_request(form: &CreateForm, errors: &mut Errors) -> serde_json::Value {
    let mut request = serde_json::Map::new();
    let name = form.name.trim();
    if !name.is_empty() {
        request.insert("name".into(), name.into());
    }
    let description = form.description.trim();
    if !description.is_empty() {
        request.insert("description".into(), description.into());
    }
    match form.permission.as_str() {
        "read-only" => {
            request.insert("readonly".into(), true.into());
        }
        "read-write" => {
            request.insert("readonly".into(), false.into());
        }
        "granular"
            if split_list(&form.packages).is_empty() && split_list(&form.scopes).is_empty() =>
        {
            errors.insert(
                "packages",
                "name at least one package or scope, or choose a permission on every package"
                    .into(),
            );
        }
        "granular" => {
            request.insert("packages".into(), split_list(&form.packages).into());
            request.insert("scopes".into(), split_list(&form.scopes).into());
            let permission = match form.granular_permission.as_str() {
                "" => "read-only",
                other => other,
            };
            request.insert("packages_and_scopes_permission".into(), permission.into());
        }
        _ => {
            errors.insert(
                "permission",
                "choose read-only, read and write, or granular".into(),
            );
        }
    }
    let cidr = split_list(&form.cidr);
    if !cidr.is_empty() {
        request.insert("cidr_whitelist".into(), cidr.into());
    }
    let expires = form.expires.trim();
    if !expires.is_empty() {
        match expires.parse::<i64>() {
            Ok(days) => {
                request.insert("expires".into(), days.into());
            }
            Err(_) => {
                errors.insert(
                    "expires",
                    "expires is a number of days from 1 to 3650".into(),
                );
            }
        }
    }
    if form.bypass_2fa.is_some() {
        request.insert("bypass_2fa".into(), true.into());
    }
    serde_json::Value::Object(request)
}

/// `GET /-/web/tokens/new`.
pub(crate) async fn new_page(State(state): State<AppState>, who: Authenticated) -> Response {
    let owner = who.owner().to_owned();
    if let Err(error) = manager(who, Permission::ReadWrite) {
        return api_error_page(Some(&owner), error);
    }
    let ask_code = match has_2fa(&state, &owner).await {
        Ok(ask) => ask,
        Err(error) => return api_error_page(Some(&owner), error),
    };
    let page = NewTokenPage::of(&state, ask_code);
    create_form(&owner, &CreateForm::default(), &Errors::new(), &page)
}

/// What the new-token form says besides the form's own values.
struct NewTokenPage {
    /// The account has 2FA: the form asks for a code.
    ask_code: bool,
    /// What an empty expiry means for a token that can write.
    write_lifetime: Option<std::time::Duration>,
}

impl NewTokenPage {
    fn of(state: &AppState, ask_code: bool) -> Self {
        Self {
            ask_code,
            write_lifetime: state.tokens().write_token_lifetime(),
        }
    }

    /// The expiry field's hint: what leaving it empty gives.
    fn expiry_hint(&self) -> String {
        let writers = match self
            .write_lifetime
            .map(|lifetime| lifetime.as_secs() / 86_400)
        {
            Some(1) => "1 day".to_owned(),
            Some(days) => format!("{days} days"),
            None => "no expiry".to_owned(),
        };
        format!(
            "From 1 to 3650. Empty: {writers} for a token that can publish (this registry's \
             default), no expiry for a read-only one."
        )
    }
}
fn create_form(owner: &str, form: &CreateForm, errors: &Errors, page: &NewTokenPage) -> Response {
    let error = |field: &'static str| field_error(field, &errors.get(field).cloned());
    let described = |field: &str| format!("{field}-hint {field}-error");
    // The least access is the default: more is a choice the person makes.
    let permission = match form.permission.as_str() {
        "" => "read-only",
        other => other,
    };
    let granular = match form.granular_permission.as_str() {
        "" => "read-only",
        other => other,
    };
    let body = html! {
        @if let Some(general) = errors.get("general") { p.error #general-error role="alert" { (general) } }
        @if !errors.is_empty() {
            div.error role="alert" {
                p { "The token was not created:" }
                ul {
                    @for (field, message) in errors.iter().filter(|(field, _)| **field != "general") {
                        li { a href=(format!("#{field}")) { (message) } }
                    }
                }
            }
        }
        form method="post" action="/-/web/tokens/new" novalidate {
            label for="name" { "Name" }
            p.hint #name-hint { "So you can tell this token from others, such as \"CI deploy\"." }
            input #name type="text" name="name" value=(form.name) maxlength="200" aria-describedby=(described("name"));
            (error("name"))

            label for="description" { "Description (optional)" }
            p.hint #description-hint { "What the token is for." }
            textarea #description name="description" rows="2" aria-describedby=(described("description")) { (form.description) }
            (error("description"))

            fieldset #permission aria-describedby="permission-error" {
                legend { "Permission" }
                div { input #perm-ro type="radio" name="permission" value="read-only" checked[permission == "read-only"]; " " label for="perm-ro" { "Read-only: install and view every package" } }
                div { input #perm-rw type="radio" name="permission" value="read-write" checked[permission == "read-write"]; " " label for="perm-rw" { "Read and write: also publish and change every package" } }
                div { input #perm-granular type="radio" name="permission" value="granular" checked[permission == "granular"]; " " label for="perm-granular" { "Granular: only the packages and scopes you name" } }
                (error("permission"))
            // Shown only once Granular is chosen (CSS, no script: `.granular` below).
            div.granular {
            (text_field("packages", "Packages", "Package names, separated by commas or spaces, such as lodash, @alice/tool.", &form.packages, &errors.get("packages").cloned()))

            (text_field("scopes", "Scopes", "Scopes, such as @alice: every package in them.", &form.scopes, &errors.get("scopes").cloned()))

            label for="granular_permission" { "Permission on those packages and scopes" }
            select #granular_permission name="granular_permission" {
                option value="read-only" selected[granular == "read-only"] { "read-only" }
                option value="read-write" selected[granular == "read-write"] { "read-write" }
            }
            }
            }

            (text_field("cidr", "Allowed IP ranges (CIDR, optional)", "The token works only from these addresses, such as 192.0.2.0/24, 2001:db8::/32. Empty: from anywhere.", &form.cidr, &errors.get("cidr").cloned()))

            label for="expires" { "Expires after (days, optional)" }
            p.hint #expires-hint { (page.expiry_hint()) }
            input #expires type="number" name="expires" min="1" max="3650" value=(form.expires) aria-describedby=(described("expires"));
            (error("expires"))

            div style="margin-top:1rem" {
                input #bypass_2fa type="checkbox" name="bypass_2fa" value="on" checked[form.bypass_2fa.is_some()];
                " " label for="bypass_2fa" style="display:inline" { "Bypass two-factor authentication (for automation)" }
            }

            label for="password" { "Your password" }
            p.hint #password-hint { "Creating a token needs your password, as npm token create does." }
            input #password type="password" name="password" autocomplete="current-password" aria-describedby=(described("password"));
            (error("password"))

            @if page.ask_code {
                label for="otp" { "One-time password" }
                p.hint #otp-hint { "The code from your authenticator app." }
                input #otp type="text" name="otp" inputmode="numeric" autocomplete="one-time-code" aria-describedby=(described("otp"));
                (error("otp"))
            }
            div { button type="submit" { "Generate token" } }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page_response(status, layout("Generate new token", Some(owner), body))
}

/// `POST /-/web/tokens/new`: the same checks and messages as `npm token create`.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<WebState>>,
    ClientAddress(client): ClientAddress,
    who: Authenticated,
    Form(form): Form<CreateForm>,
) -> Response {
    let owner = who.owner().to_owned();
    let who = match manager(who, Permission::ReadWrite) {
        Ok(who) => who,
        Err(error) => return api_error_page(Some(&owner), error),
    };
    let ask_code = match has_2fa(&state, &owner).await {
        Ok(ask) => ask,
        Err(error) => return api_error_page(Some(&owner), error),
    };
    let page = NewTokenPage::of(&state, ask_code);
    let mut errors = Errors::new();
    let request = create_request(&form, &mut errors);
    let options = match serde_json::from_value::<tokens::CreateRequest>(request) {
        Ok(request) => tokens::options(&request).map_err(|e| e.message().to_owned()),
        Err(error) => Err(format!("invalid request: {error}")),
    };
    let options = match options {
        Ok(options) => Some(options),
        Err(message) => {
            errors.entry(field_of(&message)).or_insert(message);
            None
        }
    };
    // The allow-list is checked before the password and the code are spent.
    let cidr = split_list(&form.cidr);
    if let Err(error) = CidrList::parse(&cidr) {
        errors.entry("cidr").or_insert(error.to_string());
    }
    if form.password.is_empty() {
        errors.insert("password", "password is required to create a token".into());
    }
    let Some(options) = options.filter(|_| errors.is_empty()) else {
        return create_form(&owner, &form, &errors, &page);
    };
    let created = {
        let result = async {
            let password = &form.password;
            let mut verified = users::check_password_and_lock(
                &state,
                who.owner(),
                password,
                client,
                Standing::HoldsToken,
            )
            .await?
            .ok_or_else(ApiError::incorrect_password)?;
            let code = Some(form.otp.trim()).filter(|code| !code.is_empty());
            let sender = crate::security::wrong_codes::Sender::new(Some(who.token_id()), client);
            tfa::verify(&state, &mut verified.user, code, sender).await?;
            Ok::<_, ApiError>(state.tokens().create(who.owner(), options).await?)
        }
        .await;
        match result {
            Ok(created) => created,
            Err(error) if error.status().is_client_error() => {
                let message = error.message().to_owned();
                errors.insert(field_of(&message), message);
                return create_form(&owner, &form, &errors, &page);
            }
            Err(error) => return api_error_page(Some(&owner), error),
        }
    };
    tracing::info!(user = %owner, token_id = %created.listing.id, "token created on the web");
    let key = match random_key() {
        Ok(key) => key,
        Err(error) => return api_error_page(Some(&owner), error),
    };
    let shown = ShownToken {
        owner: owner.clone(),
        token: Zeroizing::new(created.token.expose_secret().to_owned()),
        id: created.listing.id.to_string(),
        name: created
            .listing
            .name
            .clone()
            .unwrap_or_else(|| "(unnamed)".into()),
        at: Instant::now(),
    };
    match web.shown.lock() {
        Ok(mut waiting) => {
            if let Err(error) = prune(&mut waiting, |shown| shown.at) {
                return api_error_page(Some(&owner), error);
            }
            waiting.insert(key.clone(), shown);
        }
        Err(_) => {
            return api_error_page(
                Some(&owner),
                ApiError::internal("the token table", "poisoned"),
            );
        }
    }
    // After the POST, a page of its own that shows the token once: a reload finds it gone.
    redirect(&format!("/-/web/tokens/created/{key}"))
}
