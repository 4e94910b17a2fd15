// Branded identifiers: a GrantId cannot be passed where a TargetId is meant.

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type GrantId = Brand<string, 'GrantId'>;
export type TargetId = Brand<string, 'TargetId'>;
export type UserId = Brand<string, 'UserId'>;
