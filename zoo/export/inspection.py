"""Read facts off a written SavedModel: ops, XLA functions, signatures, sizes."""

import os

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

XLA_ATTRIBUTE = "_XlaMustCompile"
_INIT_OP = "__saved_model_init_op"


def read_saved_model(export_dir):
    """The parsed `saved_model.pb` of `export_dir` (a `SavedModel` proto)."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    return saved_model


def signature_defs(export_dir):
    """Dict of signature name -> `SignatureDef` (the init op left out)."""
    meta_graph = read_saved_model(export_dir).meta_graphs[0]
    return {k: v for k, v in meta_graph.signature_def.items() if k != _INIT_OP}


def op_names(export_dir):
    """Sorted op types of every graph node and library function node.

    Calls of library functions by name are left out: they are not ops.
    """
    graph = read_saved_model(export_dir).meta_graphs[0].graph_def
    functions = {f.signature.name for f in graph.library.function}
    nodes = list(graph.node)
    for function in graph.library.function:
        nodes.extend(function.node_def)
    return sorted({n.op for n in nodes if n.op not in functions})


def xla_functions(export_dir):
    """Names of the library functions carrying `_XlaMustCompile = true`."""
    graph = read_saved_model(export_dir).meta_graphs[0].graph_def
    return sorted(
        f.signature.name
        for f in graph.library.function
        if XLA_ATTRIBUTE in f.attr and f.attr[XLA_ATTRIBUTE].b
    )


def reachable_functions(export_dir, signature_name):
    """Library functions that the signature `signature_name` can call.

    Follows function-valued attributes (`PartitionedCall`, `While`, `If`, ...)
    and direct calls from the nodes that produce the signature's outputs.
    """
    meta_graph = read_saved_model(export_dir).meta_graphs[0]
    graph = meta_graph.graph_def
    library = {f.signature.name: f for f in graph.library.function}
    by_name = {n.name: n for n in graph.node}
    outputs = meta_graph.signature_def[signature_name].outputs.values()
    nodes = [by_name[t.name.split(":")[0]] for t in outputs]
    seen = set()
    while nodes:
        node = nodes.pop()
        for callee in _callees(node, library):
            if callee not in seen:
                seen.add(callee)
                nodes.extend(library[callee].node_def)
    return sorted(seen)


def _callees(node, library):
    names = [node.op] if node.op in library else []
    for value in node.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        names.extend(f.name for f in value.list.func)
    return [n for n in names if n in library]


def weight_bytes(model):
    """Bytes of the model's variables (weights and seed states) as stored."""
    return int(
        sum(
            np.prod(v.shape, dtype=np.int64) * tf.as_dtype(v.dtype).size
            for v in model.variables
        )
    )


def directory_bytes(path):
    """Total size of the files under `path`."""
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(path)
        for name in names
    )


def export_sizes(export_dir):
    """Bytes of the SavedModel's parts.

    Returns:
        Dict with `variables` (the files under `variables/`), `weights` (the
        same less the checkpoint's object graph: the names of the tracked
        objects, a few bytes per variable whatever its size), `graph`
        (`saved_model.pb`) and `total`.
    """
    variables = os.path.join(export_dir, "variables")
    reader = tf.train.load_checkpoint(os.path.join(variables, "variables"))
    object_graph = reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
    return {
        "variables": directory_bytes(variables),
        "weights": directory_bytes(variables) - len(object_graph),
        "graph": os.path.getsize(os.path.join(export_dir, "saved_model.pb")),
        "total": directory_bytes(export_dir),
    }
