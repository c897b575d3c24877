import SluiceCore

/// The OpenAPI 3 description of the API, served at /api/v1/openapi.json.
enum OpenAPIDocument {
    static let document: Value = (try? Value.parseJSON(text)) ?? ["openapi": "3.0.3"]
    static let text = #"{"openapi": "3.0.3", "info": {"title": "Sluice", "version": "1"}, "paths": {}}"#
}
