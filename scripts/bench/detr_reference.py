#!/usr/bin/python3
"""A plain PyTorch eager DETR (Carion et al., 2020) on the ViT of reference.py, written the way
facebookresearch/detr computes its training step: the backbone's patch tokens as the memory with
fixed 2-D sin-cos positions, pre-norm decoder blocks of nn.MultiheadAttention (object queries added
to the queries and keys of both attentions, the positions to the memory's keys), every block's
output normalized and sent through the class and box heads (auxiliary losses), the Hungarian
matching of scipy.optimize.linear_sum_assignment on the class, L1 and GIoU costs, and the set loss
(cross-entropy with the no-object class weighted by eos_coef, L1 and GIoU of the matched boxes per
object). With anchor_queries each query also has a learned reference point: its sin-cos position
is added to the query and its logit to the box centre, as vitcpp's model does.

The model JSON is `vit bench --json`'s "model" object of a model.arch detr config; the loss
weights come from its "train"."detection" object. reference.py --like DETR_BENCH.json measures the
training step (bf16 autocast forward, fp32 losses, backward, clipping, AdamW), the peer of
`vit bench --mode train` for a detector, on the same two random boxes per image that vit bench uses.
"""
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn
from torchvision.ops import box_convert, generalized_box_iou

from reference import VisionTransformer, sincos_2d


def sincos_at(points, dim):
    """sin-cos of arbitrary 2-D points (x, y) in patch units, the table sincos_2d gives at the grid."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=points.dtype, device=points.device) / (dim / 4.0))
    halves = []
    for coordinate in (points[:, 0], points[:, 1]):
        angles = coordinate.reshape(-1, 1) * omega.reshape(1, -1)
        halves.append(torch.cat([angles.sin(), angles.cos()], dim=1))
    return torch.cat(halves, dim=1)


class DecoderBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, attn_drop):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=attn_drop, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=attn_drop, batch_first=True)
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x, query_pos, memory, memory_pos):
        normed = self.norm1(x)
        x = x + self.self_attn(normed + query_pos, normed + query_pos, normed, need_weights=False)[0]
        x = x + self.cross_attn(self.norm2(x) + query_pos, memory + memory_pos, memory, need_weights=False)[0]
        return x + self.mlp(self.norm3(x))


class Detr(nn.Module):
    def __init__(self, m):
        super().__init__()
        dim, self.grid = m["dim"], m["image_size"] // m["patch_size"]
        backbone = dict(m, pool="cls")
        self.backbone = VisionTransformer(backbone)
        del self.backbone.head
        self.register_buffer("memory_pos", sincos_2d(self.grid, dim).unsqueeze(0))
        self.query_embed = nn.Parameter(torch.randn(m["num_queries"], dim))
        self.query_anchor = None
        if m["anchor_queries"]:
            points = torch.rand(m["num_queries"], 2) * 0.9 + 0.05
            self.query_anchor = nn.Parameter(torch.log(points / (1 - points)))
        self.decoder = nn.ModuleList([DecoderBlock(dim, m["decoder_heads"], m["mlp_ratio"], m["attn_dropout"])
                                      for _ in range(m["decoder_depth"])])
        self.decoder_norm = nn.LayerNorm(dim, eps=1e-6)
        self.class_embed = nn.Linear(dim, m["num_classes"] + 1)
        self.bbox_embed = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(),
                                        nn.Linear(dim, 4))

    def forward(self, images):
        """Every decoder block's (class logits, boxes as sigmoid cx, cy, w, h), the last block first."""
        b = self.backbone
        x = b.patch_embed(images)
        x = torch.cat([b.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + b.pos_embed
        memory = b.norm(b.blocks(x))[:, 1:]
        query_pos = self.query_embed
        if self.query_anchor is not None:
            query_pos = query_pos + sincos_at(self.query_anchor.sigmoid() * self.grid - 0.5, query_pos.shape[1])
        query_pos = query_pos.unsqueeze(0)
        x = torch.zeros(images.shape[0], query_pos.shape[1], query_pos.shape[2], device=images.device)
        outputs = []
        for block in self.decoder:
            x = block(x, query_pos, memory, self.memory_pos)
            state = self.decoder_norm(x)
            boxes = self.bbox_embed(state).float()
            if self.query_anchor is not None:
                boxes = boxes + torch.cat([self.query_anchor, torch.zeros_like(self.query_anchor)], dim=1)
            outputs.append((self.class_embed(state).float(), boxes.sigmoid()))
        return outputs[::-1]


@torch.no_grad()
def hungarian_match(logits, boxes, labels, target_boxes, counts, d):
    """DETR's HungarianMatcher: one cost matrix for the batch, one assignment per image."""
    cost = (d["cost_bbox"] * torch.cdist(boxes.flatten(0, 1), target_boxes, p=1)
            - d["cost_class"] * logits.flatten(0, 1).softmax(-1)[:, labels]
            - d["cost_giou"] * generalized_box_iou(box_convert(boxes.flatten(0, 1), "cxcywh", "xyxy"),
                                                   box_convert(target_boxes, "cxcywh", "xyxy")))
    cost = cost.view(logits.shape[0], logits.shape[1], -1).cpu()
    images, queries, targets, first = [], [], [], 0
    for image, block in enumerate(cost.split(counts, dim=-1)):
        rows, cols = linear_sum_assignment(block[image])
        images += [image] * len(rows)
        queries += rows.tolist()
        targets += (cols + first).tolist()
        first += counts[image]
    return [torch.as_tensor(index, device=logits.device) for index in (images, queries, targets)]


def set_loss(outputs, labels, target_boxes, counts, d):
    """SetCriterion's labels, boxes and GIoU losses summed over the decoder blocks (aux_loss)."""
    total = 0.0
    for logits, boxes in outputs if d["aux_loss"] else outputs[:1]:
        image, query, target = hungarian_match(logits, boxes, labels, target_boxes, counts, d)
        classes = torch.full(logits.shape[:2], logits.shape[-1] - 1, dtype=torch.long, device=logits.device)
        classes[image, query] = labels[target]
        weights = torch.ones(logits.shape[-1], device=logits.device)
        weights[-1] = d["eos_coef"]
        matched, wanted = boxes[image, query], target_boxes[target]
        giou = generalized_box_iou(box_convert(matched, "cxcywh", "xyxy"), box_convert(wanted, "cxcywh", "xyxy"))
        total = (total + F.cross_entropy(logits.flatten(0, 1), classes.flatten(), weight=weights)
                 + d["bbox_loss_coef"] * (matched - wanted).abs().sum() / len(labels)
                 + d["giou_loss_coef"] * (1 - giou.diagonal()).sum() / len(labels))
    return total


def random_objects(batch, num_classes, device):
    """Two objects per image at random places, as vit bench draws them."""
    centres = torch.rand(2 * batch, 2, device=device) * 0.6 + 0.2
    sizes = torch.rand(2 * batch, 2, device=device) * 0.2 + 0.1
    return torch.randint(num_classes, (2 * batch,), device=device), torch.cat([centres, sizes], 1), [2] * batch
