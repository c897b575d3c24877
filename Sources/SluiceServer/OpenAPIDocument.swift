import SluiceCore

/// The OpenAPI 3.0 description of the API, served at /api/v1/openapi.json. Keep it in step
/// with API.swift; scripts/api-fuzz checks that it is valid JSON and fuzzes the server
/// against it with schemathesis.
enum OpenAPIDocument {
    /// The document, parsed once. A text that does not parse is a programming error: the
    /// server stops at startup (API.init reads this) instead of serving a stub.
    static let document: Value = {
        do throws(JSONSyntaxError) {
            return try Value.parseJSON(text)
        } catch {
            preconditionFailure("OpenAPIDocument.text is not valid JSON (line \(error.line), column \(error.column)): \(error.message)")
        }
    }()

    static let text = #"""
{
  "openapi": "3.0.3",
  "info": {
    "title": "Sluice server API",
    "version": "1",
    "description": "The API of `sluice serve`. Errors are always {\"error\": {\"code\", \"message\"}}. A method a path does not take is answered 405 with Allow. When the server has an API token (server.api_token / SLUICE_SERVER_API_TOKEN; required beyond loopback), every /api/v1 call but this document needs it: Authorization: Bearer <token>, or ?token=<token>. Any path outside /, /api, /health and /metrics is a flow's webhook endpoint (GET /api/v1/webhooks lists them): unknown ones answer 404."
  },
  "servers": [
    {
      "url": "/"
    }
  ],
  "tags": [
    {
      "name": "flows"
    },
    {
      "name": "runs"
    },
    {
      "name": "tasks"
    },
    {
      "name": "assets"
    },
    {
      "name": "live"
    },
    {
      "name": "health"
    },
    {
      "name": "meta"
    }
  ],
  "security": [
    {},
    {
      "bearerAuth": []
    },
    {
      "tokenQuery": []
    }
  ],
  "paths": {
    "/health/live": {
      "get": {
        "operationId": "live",
        "summary": "Whether the process answers",
        "tags": [
          "health"
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "The server is up.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Live"
                }
              }
            }
          }
        }
      },
      "head": {
        "operationId": "liveHead",
        "summary": "Whether the process answers (no body)",
        "tags": [
          "health"
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "The server is up."
          }
        }
      }
    },
    "/health/ready": {
      "get": {
        "operationId": "ready",
        "summary": "Whether the server takes work",
        "tags": [
          "health"
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "Ready: serving, and the store answers. Flow files that do not load are listed in flow_errors.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Ready"
                }
              }
            }
          },
          "503": {
            "description": "Not ready (starting or stopping), or the store does not answer.",
            "headers": {
              "Retry-After": {
                "description": "Seconds to wait.",
                "required": true,
                "schema": {
                  "type": "integer"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Ready"
                }
              }
            }
          }
        }
      },
      "head": {
        "operationId": "readyHead",
        "summary": "Whether the server takes work (no body)",
        "tags": [
          "health"
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "Ready."
          },
          "503": {
            "description": "Not ready.",
            "headers": {
              "Retry-After": {
                "description": "Seconds to wait.",
                "required": true,
                "schema": {
                  "type": "integer"
                }
              }
            }
          }
        }
      }
    },
    "/metrics": {
      "get": {
        "operationId": "metrics",
        "summary": "Prometheus metrics",
        "tags": [
          "health"
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "Metrics in the Prometheus text format (version 0.0.4).",
            "content": {
              "text/plain": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        }
      }
    },
    "/api/v1/openapi.json": {
      "get": {
        "operationId": "openapi",
        "summary": "This document",
        "tags": [
          "meta"
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "The OpenAPI 3.0 description of the API.",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          }
        }
      }
    },
    "/api/v1/flows": {
      "get": {
        "operationId": "listFlows",
        "summary": "List flows",
        "tags": [
          "flows"
        ],
        "responses": {
          "200": {
            "description": "Every flow file under the flows folder, by id.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/FlowList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          }
        }
      }
    },
    "/api/v1/flows/validate": {
      "post": {
        "operationId": "validateFlow",
        "summary": "Validate a flow file",
        "tags": [
          "flows"
        ],
        "parameters": [
          {
            "name": "file",
            "in": "query",
            "required": false,
            "description": "The name the text is checked as (default posted.yaml); it decides the format (.yaml, .json) and appears in messages.",
            "schema": {
              "type": "string"
            },
            "example": "posted.yaml"
          }
        ],
        "requestBody": {
          "required": true,
          "description": "A flow file's text (YAML or JSON), whatever the Content-Type.",
          "content": {
            "application/yaml": {
              "schema": {
                "type": "string"
              },
              "example": "flow:\n  name: hello\n  tasks:\n    - log:\n        name: greet\n"
            },
            "text/plain": {
              "schema": {
                "type": "string"
              }
            },
            "application/json": {
              "schema": {
                "type": "object"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "Whether the text loads and plans; problems come with their line and column.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Validation"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          }
        }
      }
    },
    "/api/v1/flows/{flow}": {
      "get": {
        "operationId": "getFlow",
        "summary": "A flow, its graph and source",
        "tags": [
          "flows"
        ],
        "description": "Flow ids are paths under the flows folder and may contain '/': send it as %2F (flows/hooks%2Forders) or literally (flows/hooks/orders); both name the same flow. GET /api/v1/flows/validate names a flow called 'validate'; POST there validates.",
        "parameters": [
          {
            "name": "flow",
            "in": "path",
            "required": true,
            "description": "The flow id ('/' as %2F or literally).",
            "schema": {
              "type": "string",
              "minLength": 1
            },
            "example": "hello"
          }
        ],
        "responses": {
          "200": {
            "description": "The flow.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/FlowDetail"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/api/v1/runs": {
      "get": {
        "operationId": "listRuns",
        "summary": "List runs",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "flow",
            "in": "query",
            "required": false,
            "description": "Only this flow's runs.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "status",
            "in": "query",
            "required": false,
            "description": "Only runs in these states, comma-separated (queued, running, completed, failed, cancelled, waiting_approval, waiting_signal); empty is no filter. An unknown state is a 400.",
            "schema": {
              "type": "string",
              "pattern": "^(,*(queued|running|completed|failed|cancelled|waiting_approval|waiting_signal))*,*$"
            },
            "example": "completed,failed"
          },
          {
            "name": "limit",
            "in": "query",
            "required": false,
            "description": "At most this many (1 to 1000, default 50).",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 1000,
              "default": 50
            }
          },
          {
            "name": "durable",
            "in": "query",
            "required": false,
            "description": "true: only runs recorded in the store (default false). Another value is a 400.",
            "schema": {
              "type": "string",
              "enum": [
                "true",
                "false"
              ]
            }
          }
        ],
        "responses": {
          "200": {
            "description": "Durable runs, newest first, then recent in-memory runs of streams.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/RunList"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      },
      "post": {
        "operationId": "startRun",
        "summary": "Start a run of a flow",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "schema": {
              "type": "string"
            },
            "description": "A second start of the same flow with the same key (within the store's window) answers the first run instead of starting another. At most 255 bytes (longer: 400 invalid_idempotency_key); empty is no key. Wins over the body's idempotency_key."
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/StartRun"
              },
              "example": {
                "flow": "hello",
                "input": {
                  "name": "Ada"
                }
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "wait: true: the run ended (or suspended at a gate); its result when it completed.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/StartedRun"
                }
              }
            },
            "links": {
              "GetRun": {
                "operationId": "getRun",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              },
              "GetRunEvents": {
                "operationId": "getRunEvents",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              },
              "CancelRun": {
                "operationId": "cancelRun",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              },
              "RetryRun": {
                "operationId": "retryRun",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              },
              "ResumeRun": {
                "operationId": "resumeRun",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              },
              "ApproveRun": {
                "operationId": "approveRun",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              },
              "RejectRun": {
                "operationId": "rejectRun",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              }
            }
          },
          "202": {
            "description": "Queued for a worker.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/RunResponse"
                }
              }
            },
            "links": {
              "GetRun": {
                "operationId": "getRun",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              },
              "GetRunEvents": {
                "operationId": "getRunEvents",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              },
              "CancelRun": {
                "operationId": "cancelRun",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              },
              "RetryRun": {
                "operationId": "retryRun",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              },
              "ResumeRun": {
                "operationId": "resumeRun",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              },
              "ApproveRun": {
                "operationId": "approveRun",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              },
              "RejectRun": {
                "operationId": "rejectRun",
                "parameters": {
                  "id": "$response.body#/run/id"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          },
          "422": {
            "description": "The flow's file does not load (flow_invalid).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/api/v1/runs/{id}": {
      "get": {
        "operationId": "getRun",
        "summary": "A run with its tasks, result and gates",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "A run id (GET /api/v1/runs lists them).",
            "schema": {
              "type": "string",
              "minLength": 1
            }
          }
        ],
        "responses": {
          "200": {
            "description": "The run.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/RunDetail"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/api/v1/runs/{id}/events": {
      "get": {
        "operationId": "getRunEvents",
        "summary": "A run's events",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "A run id (GET /api/v1/runs lists them).",
            "schema": {
              "type": "string",
              "minLength": 1
            }
          }
        ],
        "responses": {
          "200": {
            "description": "A durable run's log, or an in-memory run's recent events.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/RunEvents"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/api/v1/runs/{id}/cancel": {
      "post": {
        "operationId": "cancelRun",
        "summary": "Cancel a run",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "A run id (GET /api/v1/runs lists them).",
            "schema": {
              "type": "string",
              "minLength": 1
            }
          },
          {
            "name": "X-Sluice-Actor",
            "in": "header",
            "required": false,
            "description": "Who acts, for the audit log (default: api).",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": false,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/CancelRun"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The run, now cancelled.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/RunResponse"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "description": "The run has already ended (conflict), or is an in-memory run of a stream (not_durable).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/api/v1/runs/{id}/resume": {
      "post": {
        "operationId": "resumeRun",
        "summary": "Queue an unfinished run to resume",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "A run id (GET /api/v1/runs lists them).",
            "schema": {
              "type": "string",
              "minLength": 1
            }
          }
        ],
        "responses": {
          "202": {
            "description": "Queued for a worker to resume from its checkpoints.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/RunResponse"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "description": "The run has ended or waits at a gate (conflict), or is in-memory (not_durable).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/api/v1/runs/{id}/retry": {
      "post": {
        "operationId": "retryRun",
        "summary": "Start a run again as a new run",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "A run id (GET /api/v1/runs lists them).",
            "schema": {
              "type": "string",
              "minLength": 1
            }
          },
          {
            "name": "X-Sluice-Actor",
            "in": "header",
            "required": false,
            "description": "Who acts, for the audit log (default: api).",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": false,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/RetryRun"
              }
            }
          }
        },
        "responses": {
          "202": {
            "description": "The new run, queued; completed tasks keep their outputs (except from and downstream).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/RunResponse"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "description": "The flow has no such task (conflict), or the run is in-memory (not_durable).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/api/v1/runs/{id}/approve": {
      "post": {
        "operationId": "approveRun",
        "summary": "Approve a run's pending approval gate",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "A run id (GET /api/v1/runs lists them).",
            "schema": {
              "type": "string",
              "minLength": 1
            }
          },
          {
            "name": "X-Sluice-Actor",
            "in": "header",
            "required": false,
            "description": "Who acts, for the audit log (default: api).",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": false,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/ApproveRun"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The gate, approved; the run is queued again.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/GateResponse"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "description": "The run waits for no approval, or the gate was already decided (gate_refused), or the run is in-memory (not_durable).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/api/v1/runs/{id}/reject": {
      "post": {
        "operationId": "rejectRun",
        "summary": "Reject a run's pending approval gate",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "A run id (GET /api/v1/runs lists them).",
            "schema": {
              "type": "string",
              "minLength": 1
            }
          },
          {
            "name": "X-Sluice-Actor",
            "in": "header",
            "required": false,
            "description": "Who acts, for the audit log (default: api).",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/RejectRun"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The gate, rejected; the run is queued again (its gate task fails).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/GateResponse"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "description": "The run waits for no approval, or the gate was already decided (gate_refused), or the run is in-memory (not_durable).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/api/v1/signals/{token}": {
      "post": {
        "operationId": "signal",
        "summary": "Deliver a signal to the gate waiting for a token",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "token",
            "in": "path",
            "required": true,
            "description": "The signal gate's token.",
            "schema": {
              "type": "string",
              "minLength": 1
            }
          },
          {
            "name": "X-Sluice-Actor",
            "in": "header",
            "required": false,
            "description": "Who acts, for the audit log (default: api).",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": false,
          "description": "The payload: any JSON value (an empty body is null).",
          "content": {
            "application/json": {
              "schema": {}
            }
          }
        },
        "responses": {
          "200": {
            "description": "The gate, signalled; its run is queued again with the payload as the gate task's output.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/GateResponse"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "409": {
            "description": "No gate waits for the token, it was already used, or it timed out (gate_refused).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/api/v1/events/stream": {
      "get": {
        "operationId": "streamEvents",
        "summary": "Live events as server-sent events",
        "tags": [
          "live"
        ],
        "description": "The stream does not end on its own: clients (and fuzzers) must read it incrementally. Each data line is an Event object.",
        "parameters": [
          {
            "name": "flow",
            "in": "query",
            "required": false,
            "description": "Only this flow's events.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "run",
            "in": "query",
            "required": false,
            "description": "Only this run's events.",
            "schema": {
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "An endless text/event-stream: a comment line first, then per event `event: <type>` and `data: <Event as JSON>`, until the client leaves or the server stops.",
            "content": {
              "text/event-stream": {
                "schema": {
                  "type": "string"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          }
        }
      }
    },
    "/api/v1/events/ws": {
      "get": {
        "operationId": "eventsWebSocket",
        "summary": "Live events over a WebSocket",
        "tags": [
          "live"
        ],
        "description": "Connect with a WebSocket client (GET with Upgrade: websocket). A plain HTTP request is answered 426. When the server has an API token, an upgrade without it is refused.",
        "parameters": [
          {
            "name": "flow",
            "in": "query",
            "required": false,
            "description": "Only this flow's events.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "run",
            "in": "query",
            "required": false,
            "description": "Only this run's events.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "token",
            "in": "query",
            "required": false,
            "description": "The API token, for WebSocket clients that cannot set Authorization.",
            "schema": {
              "type": "string"
            }
          }
        ],
        "responses": {
          "101": {
            "description": "Switching to the WebSocket protocol: one text message per event (an Event as JSON)."
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "426": {
            "description": "Not a WebSocket upgrade (upgrade_required).",
            "headers": {
              "Upgrade": {
                "description": "websocket",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        }
      }
    },
    "/api/v1/tasks": {
      "get": {
        "operationId": "listTasks",
        "summary": "List task types",
        "tags": [
          "tasks"
        ],
        "responses": {
          "200": {
            "description": "Every task type the server knows.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/TaskList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          }
        }
      }
    },
    "/api/v1/tasks/{type}": {
      "get": {
        "operationId": "getTask",
        "summary": "A task type",
        "tags": [
          "tasks"
        ],
        "parameters": [
          {
            "name": "type",
            "in": "path",
            "required": true,
            "description": "A task type's name or alias.",
            "schema": {
              "type": "string",
              "minLength": 1
            },
            "example": "http_endpoint"
          }
        ],
        "responses": {
          "200": {
            "description": "The task type (by name or alias).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/TaskSpec"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/api/v1/webhooks": {
      "get": {
        "operationId": "listWebhooks",
        "summary": "List webhook endpoints",
        "tags": [
          "flows"
        ],
        "responses": {
          "200": {
            "description": "The endpoints the running flows serve (any path outside /, /api, /health and /metrics).",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/WebhookList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          }
        }
      }
    },
    "/api/v1/assets": {
      "get": {
        "operationId": "listAssets",
        "summary": "List assets",
        "tags": [
          "assets"
        ],
        "responses": {
          "200": {
            "description": "Every asset of the running flows, with partition counts by state.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/AssetList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/api/v1/assets/{key}": {
      "get": {
        "operationId": "getAsset",
        "summary": "An asset and its partitions",
        "tags": [
          "assets"
        ],
        "parameters": [
          {
            "name": "key",
            "in": "path",
            "required": true,
            "description": "The asset key ('/' as %2F).",
            "schema": {
              "type": "string",
              "minLength": 1
            },
            "example": "raw"
          }
        ],
        "responses": {
          "200": {
            "description": "The asset.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Asset"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/": {
      "get": {
        "operationId": "dashboard",
        "summary": "The dashboard",
        "tags": [
          "meta"
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "The HTML dashboard.",
            "content": {
              "text/html": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        }
      },
      "head": {
        "operationId": "dashboardHead",
        "summary": "The dashboard's headers",
        "tags": [
          "meta"
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "The dashboard's headers."
          }
        }
      }
    }
  },
  "components": {
    "securitySchemes": {
      "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "The server's API token; only required when the server has one."
      },
      "tokenQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The API token as a query parameter (for clients that cannot set headers)."
      }
    },
    "responses": {
      "BadRequest": {
        "description": "The request is malformed (invalid_request, invalid_json).",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Unauthorized": {
        "description": "The server has an API token and the request did not carry it (Authorization: Bearer <token>, or ?token=).",
        "headers": {
          "WWW-Authenticate": {
            "description": "Bearer",
            "required": true,
            "schema": {
              "type": "string"
            }
          }
        },
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "NotFound": {
        "description": "No such thing (not_found).",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Conflict": {
        "description": "The request cannot be done in the thing's present state.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "TooLarge": {
        "description": "The body is larger than server.max_body_bytes (body_too_large).",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Unavailable": {
        "description": "The store failed, or the request could not be completed; retry later.",
        "headers": {
          "Retry-After": {
            "description": "Seconds to wait.",
            "required": true,
            "schema": {
              "type": "integer"
            }
          }
        },
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "MethodNotAllowed": {
        "description": "The path takes other methods (method_not_allowed); Allow lists them.",
        "headers": {
          "Allow": {
            "description": "The methods the path takes.",
            "required": true,
            "schema": {
              "type": "string"
            }
          }
        },
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      }
    },
    "schemas": {
      "Error": {
        "type": "object",
        "properties": {
          "error": {
            "type": "object",
            "properties": {
              "code": {
                "type": "string",
                "description": "A stable code: not_found, invalid_request, invalid_json, invalid_idempotency_key, method_not_allowed, unauthorized, conflict, not_durable, gate_refused, flow_is_stream, flow_invalid, body_too_large, upgrade_required, store_unavailable, unavailable."
              },
              "message": {
                "type": "string",
                "description": "What went wrong, for people."
              }
            },
            "required": [
              "code",
              "message"
            ]
          }
        },
        "required": [
          "error"
        ],
        "description": "Every error answer of the API."
      },
      "Run": {
        "type": "object",
        "properties": {
          "id": {
            "type": "string"
          },
          "flow": {
            "type": "string",
            "description": "The flow id."
          },
          "status": {
            "type": "string",
            "enum": [
              "queued",
              "running",
              "completed",
              "failed",
              "cancelled",
              "waiting_approval",
              "waiting_signal",
              "suspended"
            ],
            "description": "Durable runs: queued, running, completed, failed, cancelled, waiting_approval, waiting_signal. In-memory runs of streams: running, completed, failed, cancelled (suspended is listed for completeness)."
          },
          "trigger": {
            "type": "string",
            "description": "What started the run: api, cli, schedule, retry, source (in-memory runs), ..."
          },
          "durable": {
            "type": "boolean",
            "description": "true: recorded in the store; false: an in-memory run of a stream, kept only among the server's recent runs."
          },
          "input": {
            "description": "The run's input (durable runs)."
          },
          "created": {
            "type": "string",
            "format": "date-time"
          },
          "started": {
            "type": "string",
            "format": "date-time"
          },
          "ended": {
            "type": "string",
            "format": "date-time"
          },
          "error": {
            "type": "string",
            "description": "Why the run failed or was cancelled."
          },
          "idempotency_key": {
            "type": "string"
          },
          "failed_task": {
            "type": "string",
            "description": "The task whose failure failed an in-memory run."
          }
        },
        "required": [
          "id",
          "flow",
          "status",
          "trigger",
          "durable",
          "created"
        ],
        "description": "A run as listed."
      },
      "TaskAttempt": {
        "type": "object",
        "properties": {
          "attempt": {
            "type": "integer"
          },
          "status": {
            "type": "string"
          },
          "started": {
            "type": "string",
            "format": "date-time"
          },
          "ended": {
            "type": "string",
            "format": "date-time"
          },
          "error": {
            "type": "string"
          }
        },
        "required": [
          "attempt",
          "status",
          "started"
        ]
      },
      "TaskRun": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "status": {
            "type": "string",
            "description": "running, completed, failed, skipped, retrying, cancelled (an item of a scatter its gather gave up on), ..."
          },
          "attempts": {
            "type": "integer"
          },
          "started": {
            "type": "string",
            "format": "date-time"
          },
          "ended": {
            "type": "string",
            "format": "date-time"
          },
          "duration_ms": {
            "type": "number"
          },
          "error": {
            "type": "string",
            "nullable": true
          },
          "history": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/TaskAttempt"
            }
          }
        },
        "required": [
          "name",
          "attempts"
        ],
        "description": "A task of a run: its last attempt's state (and, for durable runs, every attempt)."
      },
      "Event": {
        "type": "object",
        "properties": {
          "type": {
            "type": "string",
            "description": "run_started, run_completed, run_failed, run_suspended, task_started, task_completed, task_failed, task_retrying, task_skipped, task_cancelled, log, progress, stdout, stderr; in a durable run's log also run_cancelled, run_retried, gate.approved, gate.rejected, gate.signalled, gate.timed_out, ..."
          },
          "run": {
            "type": "string"
          },
          "time": {
            "type": "string",
            "format": "date-time"
          },
          "flow": {
            "type": "string"
          },
          "task": {
            "type": "string"
          },
          "attempt": {
            "type": "integer"
          },
          "level": {
            "type": "string"
          },
          "message": {
            "type": "string"
          },
          "duration_ms": {
            "type": "number"
          },
          "delay_ms": {
            "type": "number"
          },
          "percent": {
            "type": "number"
          },
          "interrupted": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "by": {
            "type": "string",
            "description": "Who decided a gate (gate.* events)."
          },
          "from_run": {
            "type": "string"
          },
          "from_task": {
            "type": "string",
            "nullable": true
          }
        },
        "required": [
          "type",
          "run"
        ],
        "description": "An engine event (what --events json prints), or an entry of a durable run's log."
      },
      "Gate": {
        "type": "object",
        "properties": {
          "kind": {
            "type": "string",
            "enum": [
              "approval",
              "signal"
            ]
          },
          "status": {
            "type": "string",
            "enum": [
              "pending",
              "approved",
              "rejected",
              "signalled",
              "timed_out",
              "retrying",
              "closed"
            ]
          },
          "run": {
            "type": "string"
          },
          "task": {
            "type": "string",
            "description": "The gate's task: NAME, or NAME@i for item i of a scatter (NAME#gate for a script's gate)."
          },
          "message": {
            "type": "string"
          },
          "context": {
            "description": "What the approver sees (the task's input by default)."
          },
          "created": {
            "type": "number",
            "description": "Unix time, seconds."
          },
          "deadline": {
            "type": "number",
            "description": "Unix time, seconds."
          },
          "on_timeout": {
            "type": "string"
          },
          "token": {
            "type": "string",
            "description": "A signal gate's token."
          },
          "wait": {
            "type": "integer",
            "description": "With on_timeout: retry, which wait this is (1 for the first)."
          },
          "max_wait_attempts": {
            "type": "integer",
            "description": "With on_timeout: retry, how many waits the gate makes in all."
          },
          "decided_by": {
            "type": "string"
          },
          "decided_at": {
            "type": "number",
            "description": "Unix time, seconds."
          },
          "comment": {
            "type": "string",
            "nullable": true
          },
          "payload": {
            "description": "A signal's payload."
          }
        },
        "required": [
          "kind",
          "status",
          "run",
          "task"
        ],
        "description": "An approval or signal gate a run waits (or waited) at."
      },
      "RunDetail": {
        "allOf": [
          {
            "$ref": "#/components/schemas/Run"
          },
          {
            "type": "object",
            "properties": {
              "tasks": {
                "type": "array",
                "items": {
                  "$ref": "#/components/schemas/TaskRun"
                }
              },
              "result": {
                "description": "The result of a completed durable run."
              },
              "gates": {
                "type": "array",
                "items": {
                  "$ref": "#/components/schemas/Gate"
                }
              },
              "events": {
                "type": "array",
                "items": {
                  "$ref": "#/components/schemas/Event"
                },
                "description": "An in-memory run's recent events."
              }
            },
            "required": [
              "tasks"
            ]
          }
        ],
        "description": "A run with its tasks, result and gates."
      },
      "RunList": {
        "type": "object",
        "properties": {
          "runs": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Run"
            }
          }
        },
        "required": [
          "runs"
        ]
      },
      "RunResponse": {
        "type": "object",
        "properties": {
          "run": {
            "$ref": "#/components/schemas/Run"
          }
        },
        "required": [
          "run"
        ]
      },
      "StartedRun": {
        "type": "object",
        "properties": {
          "run": {
            "$ref": "#/components/schemas/Run"
          },
          "result": {
            "description": "The run's result, when it completed (wait: true)."
          }
        },
        "required": [
          "run"
        ]
      },
      "RunEvents": {
        "type": "object",
        "properties": {
          "run": {
            "type": "string"
          },
          "events": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Event"
            }
          },
          "dropped": {
            "type": "integer",
            "description": "In-memory runs: how many older events were dropped."
          }
        },
        "required": [
          "run",
          "events"
        ]
      },
      "StartRun": {
        "type": "object",
        "properties": {
          "flow": {
            "type": "string",
            "description": "A flow id from GET /api/v1/flows (a workflow or scheduled flow; streams start their own runs)."
          },
          "input": {
            "description": "The run's input (default {})."
          },
          "idempotency_key": {
            "type": "string",
            "nullable": true,
            "description": "Same as the Idempotency-Key header (the header wins); at most 255 bytes, empty or null is no key."
          },
          "wait": {
            "type": "boolean",
            "nullable": true,
            "default": false,
            "description": "true: run it now and answer when it ends or suspends (200); false: queue it (202)."
          }
        },
        "required": [
          "flow"
        ]
      },
      "CancelRun": {
        "type": "object",
        "properties": {
          "reason": {
            "type": "string",
            "nullable": true,
            "description": "Recorded as the run's error (default: cancelled through the API)."
          }
        },
        "description": "An empty body is {}. Fields of another type than documented are a 400."
      },
      "RetryRun": {
        "type": "object",
        "properties": {
          "from": {
            "type": "string",
            "nullable": true,
            "description": "Run this task and everything downstream of it again."
          }
        },
        "description": "An empty body is {}: only what did not complete runs again."
      },
      "ApproveRun": {
        "type": "object",
        "properties": {
          "task": {
            "type": "string",
            "nullable": true,
            "description": "The gate's task, when the run has several: NAME, or NAME@i for item i of a scatter. When several pending gates match, nothing is decided (409 gate_refused, listing them)."
          },
          "comment": {
            "type": "string",
            "nullable": true
          }
        },
        "description": "An empty body is {}."
      },
      "RejectRun": {
        "type": "object",
        "properties": {
          "task": {
            "type": "string",
            "nullable": true,
            "description": "The gate's task, when the run has several: NAME, or NAME@i for item i of a scatter. When several pending gates match, nothing is decided (409 gate_refused, listing them)."
          },
          "reason": {
            "type": "string",
            "minLength": 1
          }
        },
        "required": [
          "reason"
        ],
        "description": "A rejection needs a reason (400 without one)."
      },
      "GateResponse": {
        "type": "object",
        "properties": {
          "gate": {
            "$ref": "#/components/schemas/Gate"
          }
        },
        "required": [
          "gate"
        ]
      },
      "Flow": {
        "type": "object",
        "properties": {
          "id": {
            "type": "string",
            "description": "The file's path under the flows folder without its extension; may contain '/'."
          },
          "file": {
            "type": "string"
          },
          "status": {
            "type": "string",
            "enum": [
              "active",
              "invalid",
              "stale"
            ],
            "description": "active: loaded; invalid: never loaded; stale: the file's latest edit does not load, an older version runs."
          },
          "kind": {
            "type": "string",
            "enum": [
              "stream",
              "scheduled",
              "workflow"
            ]
          },
          "version": {
            "type": "string",
            "description": "The first 12 hex digits of the running version's digest."
          },
          "loaded": {
            "type": "string",
            "format": "date-time"
          },
          "tasks": {
            "type": "integer",
            "description": "How many tasks."
          },
          "assets": {
            "type": "integer",
            "description": "How many tasks are assets."
          },
          "display_name": {
            "type": "string"
          },
          "description": {
            "type": "string"
          },
          "errors": {
            "type": "array",
            "items": {
              "type": "string"
            }
          }
        },
        "required": [
          "id",
          "file",
          "status"
        ],
        "description": "A flow as listed."
      },
      "GraphTask": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "type": {
            "type": "string"
          },
          "depends_on": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "kind": {
            "type": "string",
            "enum": [
              "source",
              "processor",
              "operator"
            ]
          },
          "asset": {
            "type": "string",
            "description": "The asset key, when the task is an asset."
          },
          "endpoint": {
            "type": "string",
            "description": "http_endpoint tasks: the path served."
          },
          "method": {
            "type": "string",
            "description": "http_endpoint tasks: the method accepted."
          }
        },
        "required": [
          "name",
          "type",
          "depends_on",
          "kind"
        ]
      },
      "FlowDetail": {
        "allOf": [
          {
            "$ref": "#/components/schemas/Flow"
          },
          {
            "type": "object",
            "properties": {
              "labels": {
                "type": "object",
                "additionalProperties": true
              },
              "graph": {
                "type": "object",
                "properties": {
                  "tasks": {
                    "type": "array",
                    "items": {
                      "$ref": "#/components/schemas/GraphTask"
                    }
                  }
                },
                "required": [
                  "tasks"
                ]
              },
              "schedule": {
                "type": "string"
              },
              "source": {
                "type": "string",
                "description": "The running version's text."
              }
            }
          }
        ],
        "description": "A flow with its graph and source (graph, labels and source only when a version runs)."
      },
      "FlowList": {
        "type": "object",
        "properties": {
          "flows": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Flow"
            }
          }
        },
        "required": [
          "flows"
        ]
      },
      "FlowProblem": {
        "type": "object",
        "properties": {
          "message": {
            "type": "string"
          },
          "code": {
            "type": "string"
          },
          "line": {
            "type": "integer"
          },
          "column": {
            "type": "integer"
          }
        },
        "required": [
          "message"
        ]
      },
      "Validation": {
        "type": "object",
        "properties": {
          "valid": {
            "type": "boolean"
          },
          "errors": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/FlowProblem"
            }
          },
          "warnings": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/FlowProblem"
            }
          },
          "flow": {
            "type": "object",
            "properties": {
              "name": {
                "type": "string"
              },
              "tasks": {
                "type": "array",
                "items": {
                  "type": "string"
                }
              }
            },
            "required": [
              "name",
              "tasks"
            ]
          }
        },
        "required": [
          "valid"
        ],
        "description": "valid: true comes with flow and warnings; valid: false with errors."
      },
      "FieldSpec": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "type": {
            "type": "string",
            "description": "string, integer, number, bool, duration, any, a|b|c, [T], {string: T}, object, T or U"
          },
          "required": {
            "type": "boolean"
          },
          "summary": {
            "type": "string"
          },
          "default": {
            "description": "The default value."
          },
          "aliases": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "templated": {
            "type": "boolean"
          },
          "fields": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/FieldSpec"
            }
          }
        },
        "required": [
          "name",
          "type",
          "required",
          "summary"
        ]
      },
      "Port": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "summary": {
            "type": "string"
          }
        },
        "required": [
          "name",
          "summary"
        ]
      },
      "TaskSpec": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "aliases": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "summary": {
            "type": "string"
          },
          "kind": {
            "type": "string",
            "enum": [
              "source",
              "processor",
              "operator"
            ]
          },
          "fields": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/FieldSpec"
            }
          },
          "inputs": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Port"
            }
          },
          "outputs": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Port"
            }
          },
          "examples": {
            "type": "array",
            "items": {
              "type": "object",
              "properties": {
                "title": {
                  "type": "string"
                },
                "yaml": {
                  "type": "string"
                }
              },
              "required": [
                "title",
                "yaml"
              ]
            }
          }
        },
        "required": [
          "name",
          "aliases",
          "summary",
          "kind",
          "fields",
          "inputs",
          "outputs",
          "examples"
        ],
        "description": "A task type: what it does and what it accepts."
      },
      "TaskList": {
        "type": "object",
        "properties": {
          "tasks": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/TaskSpec"
            }
          }
        },
        "required": [
          "tasks"
        ]
      },
      "Webhook": {
        "type": "object",
        "properties": {
          "method": {
            "type": "string"
          },
          "path": {
            "type": "string"
          },
          "flow": {
            "type": "string"
          },
          "task": {
            "type": "string"
          }
        },
        "required": [
          "method",
          "path",
          "flow",
          "task"
        ]
      },
      "WebhookList": {
        "type": "object",
        "properties": {
          "webhooks": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Webhook"
            }
          }
        },
        "required": [
          "webhooks"
        ]
      },
      "PartitionStatus": {
        "type": "object",
        "properties": {
          "partition": {
            "type": "string"
          },
          "status": {
            "type": "string"
          },
          "reason": {
            "type": "string"
          }
        },
        "required": [
          "partition",
          "status"
        ]
      },
      "Asset": {
        "type": "object",
        "properties": {
          "key": {
            "type": "string"
          },
          "flow": {
            "type": "string"
          },
          "task": {
            "type": "string"
          },
          "depends_on": {
            "type": "array",
            "items": {
              "type": "string"
            },
            "description": "Upstream asset keys."
          },
          "partitions": {
            "type": "object",
            "additionalProperties": {
              "type": "integer"
            },
            "description": "How many partitions are in each state."
          },
          "partition_status": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/PartitionStatus"
            },
            "description": "GET /api/v1/assets/{key}: each partition's state (the last 1000)."
          }
        },
        "required": [
          "key",
          "flow",
          "task",
          "depends_on",
          "partitions"
        ]
      },
      "AssetList": {
        "type": "object",
        "properties": {
          "assets": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Asset"
            }
          }
        },
        "required": [
          "assets"
        ]
      },
      "Live": {
        "type": "object",
        "properties": {
          "status": {
            "type": "string",
            "enum": [
              "live"
            ]
          }
        },
        "required": [
          "status"
        ]
      },
      "Ready": {
        "type": "object",
        "properties": {
          "status": {
            "type": "string",
            "enum": [
              "ready",
              "not_ready",
              "store_unavailable"
            ]
          },
          "flows": {
            "type": "integer",
            "description": "Flow files known."
          },
          "flow_errors": {
            "type": "object",
            "additionalProperties": {
              "type": "array",
              "items": {
                "type": "string"
              }
            },
            "description": "Flow files that do not load, by flow id."
          },
          "error": {
            "type": "string",
            "description": "Why the store did not answer."
          }
        },
        "required": [
          "status",
          "flows"
        ]
      }
    }
  }
}
"""#
}
