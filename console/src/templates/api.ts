// The five template operations per type (Create/Get/Update<Type>Template) behind one shape: the form's fields.
// Each type's body is its Pinpoint request shape; push keeps its title and body under Default.
import { api, call } from "../api/client";

export const TYPES = ["EMAIL", "SMS", "PUSH", "VOICE"] as const;
export type TemplateType = (typeof TYPES)[number];
export type Fields = Record<string, string>;

export const FIELDS: Record<TemplateType, { name: string; multiline: boolean }[]> = {
  EMAIL: [
    { name: "Subject", multiline: false },
    { name: "HtmlPart", multiline: true },
    { name: "TextPart", multiline: true },
  ],
  SMS: [{ name: "Body", multiline: true }],
  PUSH: [
    { name: "Title", multiline: false },
    { name: "Body", multiline: true },
  ],
  VOICE: [
    { name: "Body", multiline: true },
    { name: "LanguageCode", multiline: false },
  ],
};

/** The Pinpoint request body for a type's fields (empty fields left out). */
export function requestBody(type: TemplateType, fields: Fields): Record<string, unknown> {
  const present = Object.fromEntries(Object.entries(fields).filter(([, value]) => value.trim() !== ""));
  return type === "PUSH" ? { Default: present } : present;
}

/** The form's fields from a stored template. */
export function formFields(type: TemplateType, stored: Record<string, unknown>): Fields {
  const source = (type === "PUSH" ? stored.Default : stored) as Record<string, unknown> | undefined;
  return Object.fromEntries(FIELDS[type].map(({ name }) => [name, String(source?.[name] ?? "")]));
}

const path = { "template-name": "" };

export async function loadTemplate(type: TemplateType, name: string, version?: string) {
  const params = { params: { path: { ...path, "template-name": name }, query: { version } } };
  switch (type) {
    case "EMAIL":
      return (await call(api.GET("/v1/templates/{template-name}/email", params))) as Record<string, unknown>;
    case "SMS":
      return (await call(api.GET("/v1/templates/{template-name}/sms", params))) as Record<string, unknown>;
    case "PUSH":
      return (await call(api.GET("/v1/templates/{template-name}/push", params))) as Record<string, unknown>;
    case "VOICE":
      return (await call(api.GET("/v1/templates/{template-name}/voice", params))) as Record<string, unknown>;
  }
}

/** Create the template, or add a version to it (which becomes the latest; the active one changes separately). */
export async function saveTemplate(type: TemplateType, name: string, fields: Fields, exists: boolean) {
  const body = requestBody(type, fields) as never;
  const create = { params: { path: { "template-name": name } }, body };
  const update = { params: { path: { "template-name": name }, query: { "create-new-version": "true" } }, body };
  switch (type) {
    case "EMAIL":
      return exists
        ? call(api.PUT("/v1/templates/{template-name}/email", update))
        : call(api.POST("/v1/templates/{template-name}/email", create));
    case "SMS":
      return exists
        ? call(api.PUT("/v1/templates/{template-name}/sms", update))
        : call(api.POST("/v1/templates/{template-name}/sms", create));
    case "PUSH":
      return exists
        ? call(api.PUT("/v1/templates/{template-name}/push", update))
        : call(api.POST("/v1/templates/{template-name}/push", create));
    case "VOICE":
      return exists
        ? call(api.PUT("/v1/templates/{template-name}/voice", update))
        : call(api.POST("/v1/templates/{template-name}/voice", create));
  }
}
