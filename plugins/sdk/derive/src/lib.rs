//! `#[derive(Command)]`: one struct (a leaf command) or enum (a command group) gives both the
//! manifest entry (`CommandSpec` with its `OptionSpec`s) and the decoder of a call's options,
//! so the two cannot drift. See `deckhand_plugin_sdk::Command` for the attributes.
//!
//! `#[command(root)]` on an enum makes it a plugin's set of top-level commands instead of a
//! group (for a plugin with several, like aks's `/aks`, `/deploy`, `/undeploy`): it gets
//! `specs()` (the manifest's `commands`, one per variant) and `decode(&Call)` (the variant of
//! the call's top-level command), so a command without a handler does not compile either.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{
    Attribute, Data, DeriveInput, Expr, Fields, GenericArgument, Lit, LitStr, PathArguments, Type,
    parse_macro_input, spanned::Spanned,
};

#[proc_macro_derive(Command, attributes(command, option))]
pub fn derive_command(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// `#[command(...)]` on the type.
#[derive(Default)]
struct CommandAttrs {
    name: Option<String>,
    destructive: bool,
    preview: bool,
    timeout_secs: Option<u64>,
    permission: Option<String>,
    root: bool,
    private: bool,
    idempotent: bool,
}

/// `#[option(...)]` on a field.
#[derive(Default)]
struct OptionAttrs {
    name: Option<String>,
    positional: bool,
    autocomplete: bool,
    sensitive: bool,
    rule: Option<syn::Ident>,
    choices: Vec<String>,
    default: Option<Expr>,
    min: Option<i64>,
    max: Option<i64>,
}

fn doc(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    lines.join(" ").trim().to_owned()
}

/// `PoolAdd` → `pool-add`, `vm_size` → `vm-size`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.extend(c.to_lowercase());
        } else if c == '_' {
            out.push('-');
        } else {
            out.push(c);
        }
    }
    out
}

fn command_attrs(attrs: &[Attribute]) -> syn::Result<CommandAttrs> {
    let mut out = CommandAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("command")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                out.name = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("destructive") {
                out.destructive = true;
            } else if meta.path.is_ident("preview") {
                // A previewed command is destructive: the preview is its confirmation text.
                out.destructive = true;
                out.preview = true;
            } else if meta.path.is_ident("timeout_secs") {
                out.timeout_secs = Some(meta.value()?.parse::<syn::LitInt>()?.base10_parse()?);
            } else if meta.path.is_ident("permission") {
                out.permission = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("root") {
                out.root = true;
            } else if meta.path.is_ident("private") {
                out.private = true;
            } else if meta.path.is_ident("idempotent") {
                out.idempotent = true;
            } else {
                return Err(meta.error(
                    "unknown #[command] key; use name, destructive, preview, timeout_secs, permission, private, idempotent or root",
                ));
            }
            Ok(())
        })?;
    }
    Ok(out)
}

fn option_attrs(attrs: &[Attribute]) -> syn::Result<OptionAttrs> {
    let mut out = OptionAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("option")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                out.name = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("positional") {
                out.positional = true;
            } else if meta.path.is_ident("autocomplete") {
                out.autocomplete = true;
            } else if meta.path.is_ident("sensitive") {
                out.sensitive = true;
            } else if meta.path.is_ident("rule") {
                out.rule = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("default") {
                out.default = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("min") {
                out.min = Some(meta.value()?.parse::<syn::LitInt>()?.base10_parse()?);
            } else if meta.path.is_ident("max") {
                out.max = Some(meta.value()?.parse::<syn::LitInt>()?.base10_parse()?);
            } else if meta.path.is_ident("choices") {
                meta.parse_nested_meta(|choice| {
                    let name = choice
                        .path
                        .get_ident()
                        .map(ToString::to_string)
                        .ok_or_else(|| choice.error("a choice is a plain word"))?;
                    out.choices.push(name);
                    Ok(())
                })?;
            } else {
                return Err(meta.error(
                    "unknown #[option] key; use name, positional, autocomplete, sensitive, rule, default, min, max or choices(...)",
                ));
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// `Option<T>` → `Some(T)`.
fn optional(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    match &last.arguments {
        PathArguments::AngleBracketed(args) => match args.args.first()? {
            GenericArgument::Type(inner) => Some(inner),
            _ => None,
        },
        _ => None,
    }
}

fn type_name(ty: &Type) -> String {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The variants of a command enum: `(variant, the command type it wraps)`.
fn variants(data: &syn::DataEnum) -> syn::Result<Vec<(&syn::Ident, &Type)>> {
    data.variants
        .iter()
        .map(|variant| {
            let Fields::Unnamed(fields) = &variant.fields else {
                return Err(syn::Error::new(
                    variant.span(),
                    "a command group's variants wrap one command each: `Tags(Tags)`",
                ));
            };
            match fields.unnamed.first() {
                Some(inner) if fields.unnamed.len() == 1 => Ok((&variant.ident, &inner.ty)),
                _ => Err(syn::Error::new(variant.span(), "one command per variant")),
            }
        })
        .collect()
}

/// `#[command(root)]`: the plugin's top-level commands, one per variant.
fn expand_root(ident: &syn::Ident, data: &Data) -> syn::Result<Tokens> {
    let Data::Enum(data) = data else {
        return Err(syn::Error::new(
            ident.span(),
            "#[command(root)] is for an enum of top-level commands",
        ));
    };
    let sdk = quote!(::deckhand_plugin_sdk);
    let (idents, types): (Vec<_>, Vec<_>) = variants(data)?.into_iter().unzip();
    Ok(quote! {
        impl #ident {
            /// The manifest's top-level commands.
            pub fn specs() -> ::std::vec::Vec<#sdk::CommandSpec> {
                ::std::vec![#(<#types as #sdk::Command>::spec()),*]
            }

            /// The call decoded into the variant of its top-level command.
            pub fn decode(call: &#sdk::Call) -> Result<Self, #sdk::PluginError> {
                let Some((first, rest)) = call.command.split_first() else {
                    return Err(#sdk::PluginError::new(
                        #sdk::ErrorCode::UnknownCommand,
                        "the call names no command",
                    ));
                };
                #(
                    if *first == <#types as #sdk::Command>::spec().name {
                        return <#types as #sdk::Command>::decode_path(rest, &call.options)
                            .map(#ident::#idents);
                    }
                )*
                Err(#sdk::PluginError::new(
                    #sdk::ErrorCode::UnknownCommand,
                    format!("/{first} is not a command of this plugin"),
                ))
            }
        }
    })
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let attrs = command_attrs(&input.attrs)?;
    let ident = &input.ident;
    if attrs.root {
        return expand_root(ident, &input.data);
    }
    let name = attrs.name.unwrap_or_else(|| kebab(&ident.to_string()));
    let description = doc(&input.attrs);
    if description.is_empty() {
        return Err(syn::Error::new(
            ident.span(),
            "a command needs a doc comment: it is the command's help",
        ));
    }
    let mut settings = Vec::new();
    if attrs.preview {
        settings.push(quote!(.previewed()));
    } else if attrs.destructive {
        settings.push(quote!(.destructive()));
    }
    if let Some(secs) = attrs.timeout_secs {
        settings.push(quote!(.timeout_secs(#secs)));
    }
    if let Some(permission) = attrs.permission {
        settings.push(quote!(.permission(#permission)));
    }
    if attrs.private {
        settings.push(quote!(.private()));
    }
    if attrs.idempotent {
        settings.push(quote!(.idempotent()));
    }
    let sdk = quote!(::deckhand_plugin_sdk);
    match &input.data {
        Data::Struct(data) => {
            let Fields::Named(fields) = &data.fields else {
                return Err(syn::Error::new(
                    data.fields.span(),
                    "a command struct has named fields, one per option",
                ));
            };
            let mut specs = Vec::new();
            let mut decoders = Vec::new();
            for field in &fields.named {
                let (spec, decode) = option(field)?;
                specs.push(spec);
                decoders.push(decode);
            }
            Ok(quote! {
                impl #sdk::Command for #ident {
                    fn spec() -> #sdk::CommandSpec {
                        #sdk::CommandSpec::new(#name, #description)
                            #(.option(#specs))*
                            #(#settings)*
                    }

                    fn decode_path(
                        path: &[String],
                        options: &#sdk::__private::Map<String, #sdk::__private::Value>,
                    ) -> Result<Self, #sdk::PluginError> {
                        if let Some(extra) = path.first() {
                            return Err(#sdk::PluginError::new(
                                #sdk::ErrorCode::UnknownCommand,
                                format!("/{} has no subcommand {extra}", #name),
                            ));
                        }
                        Ok(#ident { #(#decoders,)* })
                    }
                }
            })
        }
        Data::Enum(data) => {
            let mut subcommands = Vec::new();
            let mut arms = Vec::new();
            for (variant_ident, inner) in variants(data)? {
                subcommands.push(quote!(<#inner as #sdk::Command>::spec()));
                arms.push(quote! {
                    if *first == <#inner as #sdk::Command>::spec().name {
                        return <#inner as #sdk::Command>::decode_path(rest, options)
                            .map(#ident::#variant_ident);
                    }
                });
            }
            Ok(quote! {
                impl #sdk::Command for #ident {
                    fn spec() -> #sdk::CommandSpec {
                        #sdk::CommandSpec::new(#name, #description)
                            #(.subcommand(#subcommands))*
                            #(#settings)*
                    }

                    fn decode_path(
                        path: &[String],
                        options: &#sdk::__private::Map<String, #sdk::__private::Value>,
                    ) -> Result<Self, #sdk::PluginError> {
                        let Some((first, rest)) = path.split_first() else {
                            return Err(#sdk::PluginError::new(
                                #sdk::ErrorCode::UnknownCommand,
                                format!("/{} needs a subcommand", #name),
                            ));
                        };
                        #(#arms)*
                        Err(#sdk::PluginError::new(
                            #sdk::ErrorCode::UnknownCommand,
                            format!("/{} has no subcommand {first}", #name),
                        ))
                    }
                }
            })
        }
        Data::Union(_) => Err(syn::Error::new(
            ident.span(),
            "a command is a struct or an enum",
        )),
    }
}

/// The `OptionSpec` expression and the field initialiser for one field.
fn option(field: &syn::Field) -> syn::Result<(Tokens, Tokens)> {
    let sdk = quote!(::deckhand_plugin_sdk);
    let attrs = option_attrs(&field.attrs)?;
    let ident = field
        .ident
        .as_ref()
        .ok_or_else(|| syn::Error::new(field.span(), "options are named fields"))?;
    let name = attrs.name.unwrap_or_else(|| kebab(&ident.to_string()));
    let description = doc(&field.attrs);
    if description.is_empty() {
        return Err(syn::Error::new(
            ident.span(),
            "an option needs a doc comment: it is the option's help",
        ));
    }
    let inner = optional(&field.ty);
    let base = inner.unwrap_or(&field.ty);
    let kind = match type_name(base).as_str() {
        "String" if !attrs.choices.is_empty() => quote!(Choice),
        "String" => quote!(String),
        "i64" => quote!(Integer),
        "bool" => quote!(Boolean),
        "Duration" => quote!(Duration),
        other => {
            return Err(syn::Error::new(
                field.ty.span(),
                format!(
                    "options are String, i64, bool or std::time::Duration (or Option of one), not {other}"
                ),
            ));
        }
    };
    let is_bool = type_name(base) == "bool";
    if is_bool && inner.is_some() {
        return Err(syn::Error::new(
            field.ty.span(),
            "a flag is a plain bool (absent means false)",
        ));
    }
    let required = inner.is_none() && !is_bool && attrs.default.is_none();
    let mut builder = if attrs.choices.is_empty() {
        quote!(#sdk::OptionSpec::new(#name, #sdk::OptionKind::#kind, #description))
    } else {
        let choices = &attrs.choices;
        quote!(#sdk::OptionSpec::choice(#name, &[#(#choices),*], #description))
    };
    if required {
        builder.extend(quote!(.required()));
    }
    if attrs.positional {
        builder.extend(quote!(.positional()));
    }
    if attrs.autocomplete {
        builder.extend(quote!(.autocomplete()));
    }
    if attrs.sensitive {
        builder.extend(quote!(.sensitive()));
    }
    if let Some(rule) = &attrs.rule {
        builder.extend(quote!(.rule(#sdk::abi::proto::NameRule::#rule)));
    }
    if let Some(min) = attrs.min {
        builder.extend(quote!(.min(#min)));
    }
    if let Some(max) = attrs.max {
        builder.extend(quote!(.max(#max)));
    }
    if let Some(default) = &attrs.default {
        // Typed as the host passes it: a string, an integer, a bool, or milliseconds.
        builder.extend(quote!(.default_value(#sdk::__private::json!(#default))));
    }
    let getter = format_ident!(
        "{}_option",
        match type_name(base).as_str() {
            "i64" => "integer",
            "bool" => "boolean",
            "Duration" => "duration",
            _ => "string",
        }
    );
    let decode = if is_bool {
        quote!(#ident: #sdk::__private::#getter(options, #name)?.unwrap_or(false))
    } else if inner.is_some() {
        quote!(#ident: #sdk::__private::#getter(options, #name)?)
    } else {
        quote!(#ident: #sdk::__private::#getter(options, #name)?.ok_or_else(|| #sdk::PluginError::bad_input(#name, format!("--{} is required", #name)))?)
    };
    Ok((builder, decode))
}
