// `Value.Object` is an `OrderedDictionary`; users of the core get its API without a second import.
@_exported import OrderedCollections
