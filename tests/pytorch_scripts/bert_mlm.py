"""A BERT masked-language-model pretraining step written the way HuggingFace's modeling_bert.py
and run_mlm.py write it: BertEmbeddings with word/position/token_type embeddings, a position_ids
buffer (arange(...).expand((1, -1))) and a token_type_ids buffer registered with
persistent=False, LayerNorm(eps=1e-12); self-attention with transpose_for_scores
(view + permute), the extended attention mask mask[:, None, None, :].to(dtype) turned into
(1.0 - mask) * torch.finfo(dtype).min; gelu(approximate='tanh') ("gelu_new"); the LM head's
decoder tied to the input embeddings with its bias a separate Parameter; _init_weights through
module.apply; DataCollatorForLanguageModeling's torch_mask_tokens (torch.full probability
matrix, masked_fill_ of special tokens, torch.bernoulli(...).bool(), labels[~masked] = -100,
80% [MASK] / 10% random via torch.randint / 10% kept); CrossEntropyLoss (ignore_index -100);
AdamW with no-decay parameter groups, get_linear_schedule_with_warmup as a LambdaLR over a
functools.partial, gradient accumulation with clip_grad_norm_. The masks come from the
generators, whose streams differ between libraries: the collator's draws are checked for what
does not depend on them, then the torch run's masked batch is shared (through a buffer module
and share_init), so training is compared step by step. Dropout is 0 for the same reason."""
import math
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.nn import CrossEntropyLoss
from torch.optim.lr_scheduler import LambdaLR


class BertConfig:
    def __init__(self, vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                 max_position_embeddings=32, type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12,
                 pad_token_id=0):
        self.__dict__.update({k: v for k, v in locals().items() if k != "self"})


class GELUActivation(nn.Module):
    """gelu_new: the tanh approximation used by the original BERT / GPT code."""

    def forward(self, input):
        return nn.functional.gelu(input, approximate="tanh")


class BertEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.register_buffer(
            "position_ids", torch.arange(config.max_position_embeddings).expand((1, -1)), persistent=False
        )
        self.register_buffer(
            "token_type_ids", torch.zeros(self.position_ids.size(), dtype=torch.long), persistent=False
        )

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, past_key_values_length=0):
        input_shape = input_ids.size()
        seq_length = input_shape[1]
        if position_ids is None:
            position_ids = self.position_ids[:, past_key_values_length: seq_length + past_key_values_length]
        if token_type_ids is None:
            buffered_token_type_ids = self.token_type_ids[:, :seq_length]
            buffered_token_type_ids_expanded = buffered_token_type_ids.expand(input_shape[0], seq_length)
            token_type_ids = buffered_token_type_ids_expanded
        inputs_embeds = self.word_embeddings(input_ids)
        token_type_embeddings = self.token_type_embeddings(token_type_ids)
        embeddings = inputs_embeds + token_type_embeddings
        position_embeddings = self.position_embeddings(position_ids)
        embeddings += position_embeddings
        embeddings = self.LayerNorm(embeddings)
        embeddings = self.dropout(embeddings)
        return embeddings


class BertSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = int(config.hidden_size / config.num_attention_heads)
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = nn.Linear(config.hidden_size, self.all_head_size)
        self.key = nn.Linear(config.hidden_size, self.all_head_size)
        self.value = nn.Linear(config.hidden_size, self.all_head_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def transpose_for_scores(self, x):
        new_x_shape = x.size()[:-1] + (self.num_attention_heads, self.attention_head_size)
        x = x.view(new_x_shape)
        return x.permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask=None):
        query_layer = self.transpose_for_scores(self.query(hidden_states))
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
        attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))
        attention_scores = attention_scores / math.sqrt(self.attention_head_size)
        if attention_mask is not None:
            attention_scores = attention_scores + attention_mask
        attention_probs = nn.functional.softmax(attention_scores, dim=-1)
        attention_probs = self.dropout(attention_probs)
        context_layer = torch.matmul(attention_probs, value_layer)
        context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
        new_context_layer_shape = context_layer.size()[:-2] + (self.all_head_size,)
        context_layer = context_layer.view(new_context_layer_shape)
        return context_layer, attention_probs


class BertSelfOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dense(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.LayerNorm(hidden_states + input_tensor)
        return hidden_states


class BertAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, hidden_states, attention_mask=None):
        self_outputs = self.self(hidden_states, attention_mask)
        attention_output = self.output(self_outputs[0], hidden_states)
        outputs = (attention_output,) + self_outputs[1:]
        return outputs


class BertIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = GELUActivation()

    def forward(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class BertOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dropout(self.dense(hidden_states))
        return self.LayerNorm(hidden_states + input_tensor)


class BertLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden_states, attention_mask=None):
        self_attention_outputs = self.attention(hidden_states, attention_mask)
        attention_output = self_attention_outputs[0]
        outputs = self_attention_outputs[1:]
        intermediate_output = self.intermediate(attention_output)
        layer_output = self.output(intermediate_output, attention_output)
        return (layer_output,) + outputs


class BertEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states, attention_mask=None, output_attentions=False):
        all_self_attentions = () if output_attentions else None
        for i, layer_module in enumerate(self.layer):
            layer_outputs = layer_module(hidden_states, attention_mask)
            hidden_states = layer_outputs[0]
            if output_attentions:
                all_self_attentions = all_self_attentions + (layer_outputs[1],)
        return hidden_states, all_self_attentions


class BertPreTrainedModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config

    @property
    def dtype(self):
        return next(self.parameters()).dtype

    def _init_weights(self, module):
        """Initialize the weights"""
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def post_init(self):
        self.apply(self._init_weights)
        self.tie_weights()

    def tie_weights(self):
        output_embeddings = self.get_output_embeddings()
        if output_embeddings is not None:
            output_embeddings.weight = self.bert.embeddings.word_embeddings.weight

    def get_output_embeddings(self):
        return None

    def get_extended_attention_mask(self, attention_mask, input_shape, dtype=None):
        if dtype is None:
            dtype = self.dtype
        if attention_mask.dim() == 3:
            extended_attention_mask = attention_mask[:, None, :, :]
        elif attention_mask.dim() == 2:
            extended_attention_mask = attention_mask[:, None, None, :]
        else:
            raise ValueError(
                f"Wrong shape for input_ids (shape {input_shape}) or attention_mask (shape {attention_mask.shape})"
            )
        extended_attention_mask = extended_attention_mask.to(dtype=dtype)  # fp16 compatibility
        extended_attention_mask = (1.0 - extended_attention_mask) * torch.finfo(dtype).min
        return extended_attention_mask


class BertModel(BertPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_attentions=False):
        input_shape = input_ids.size()
        if attention_mask is None:
            attention_mask = torch.ones(input_shape, device=input_ids.device)
        extended_attention_mask = self.get_extended_attention_mask(attention_mask, input_shape)
        embedding_output = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        return self.encoder(embedding_output, attention_mask=extended_attention_mask,
                            output_attentions=output_attentions)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = GELUActivation()
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states):
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        # The output weights are the same as the input embeddings, but there is
        # an output-only bias for each token.
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        # Need a link between the two variables so that the bias is correctly resized with `resize_token_embeddings`
        self.decoder.bias = self.bias

    def forward(self, hidden_states):
        return self.decoder(self.transform(hidden_states))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, sequence_output):
        return self.predictions(sequence_output)


class BertForMaskedLM(BertPreTrainedModel):
    _tied_weights_keys = ["predictions.decoder.bias", "cls.predictions.decoder.weight"]

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, output_attentions=False):
        sequence_output, attentions = self.bert(input_ids, attention_mask=attention_mask,
                                                token_type_ids=token_type_ids, output_attentions=output_attentions)
        prediction_scores = self.cls(sequence_output)
        masked_lm_loss = None
        if labels is not None:
            loss_fct = CrossEntropyLoss()  # -100 index = padding token
            masked_lm_loss = loss_fct(prediction_scores.view(-1, self.config.vocab_size), labels.view(-1))
        return masked_lm_loss, prediction_scores, attentions


# ---- a word-level tokenizer and run_mlm's collator
class WordTokenizer:
    pad_token, unk_token, cls_token, sep_token, mask_token = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"

    def __init__(self, corpus, vocab_size):
        words = sorted({w for line in corpus for w in line.split()})
        self.vocab = {t: i for i, t in enumerate([self.pad_token, self.unk_token, self.cls_token, self.sep_token,
                                                  self.mask_token] + words[:vocab_size - 5])}
        self.all_special_ids = [0, 1, 2, 3, 4]

    def __len__(self):
        return len(self.vocab)

    def convert_tokens_to_ids(self, token):
        return self.vocab.get(token, 1)

    def get_special_tokens_mask(self, ids, already_has_special_tokens=True):
        return [1 if i in self.all_special_ids else 0 for i in ids]

    def __call__(self, lines, max_length):
        ids, masks, types = [], [], []
        for line in lines:
            a, _, b = line.partition(" | ")
            seg_a = [self.vocab[self.cls_token]] + [self.convert_tokens_to_ids(w) for w in a.split()] + [3]
            seg_b = [self.convert_tokens_to_ids(w) for w in b.split()] + [3] if b else []
            tok = (seg_a + seg_b)[:max_length]
            typ = ([0] * len(seg_a) + [1] * len(seg_b))[:max_length]
            pad = max_length - len(tok)
            ids.append(tok + [0] * pad)
            masks.append([1] * len(tok) + [0] * pad)
            types.append(typ + [0] * pad)
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(masks),
                "token_type_ids": torch.tensor(types)}


class DataCollatorForLanguageModeling:
    def __init__(self, tokenizer, mlm_probability=0.15):
        self.tokenizer = tokenizer
        self.mlm_probability = mlm_probability

    def torch_mask_tokens(self, inputs, special_tokens_mask=None):
        """
        Prepare masked tokens inputs/labels for masked language modeling: 80% MASK, 10% random, 10% original.
        """
        labels = inputs.clone()
        # We sample a few tokens in each sequence for MLM training (with probability `self.mlm_probability`)
        probability_matrix = torch.full(labels.shape, self.mlm_probability)
        if special_tokens_mask is None:
            special_tokens_mask = [
                self.tokenizer.get_special_tokens_mask(val, already_has_special_tokens=True) for val in labels.tolist()
            ]
            special_tokens_mask = torch.tensor(special_tokens_mask, dtype=torch.bool)
        else:
            special_tokens_mask = special_tokens_mask.bool()

        probability_matrix.masked_fill_(special_tokens_mask, value=0.0)
        masked_indices = torch.bernoulli(probability_matrix).bool()
        labels[~masked_indices] = -100  # We only compute loss on masked tokens

        # 80% of the time, we replace masked input tokens with tokenizer.mask_token ([MASK])
        indices_replaced = torch.bernoulli(torch.full(labels.shape, 0.8)).bool() & masked_indices
        inputs[indices_replaced] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.mask_token)

        # 10% of the time, we replace masked input tokens with random word
        indices_random = torch.bernoulli(torch.full(labels.shape, 0.5)).bool() & masked_indices & ~indices_replaced
        random_words = torch.randint(len(self.tokenizer), labels.shape, dtype=torch.long)
        inputs[indices_random] = random_words[indices_random]

        # The rest of the time (10% of the time) we keep the masked input tokens unchanged
        return inputs, labels


corpus = [
    "the cat sat on the mat | it was warm",
    "a dog ran in the park | the sun was out",
    "birds sing in the morning | the air is cool",
    "the river flows to the sea | fish swim in it",
    "she reads a book at night | the lamp is on",
    "we eat bread with butter | tea is hot",
    "the train leaves at noon",
    "rain falls on the roof | the cat sleeps",
]
config = BertConfig()
tokenizer = WordTokenizer(corpus, config.vocab_size)
encoded = tokenizer(corpus, max_length=16)
collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)

# the collator on a big batch: draw-independent properties
torch.manual_seed(0)
big = encoded["input_ids"].repeat(200, 1)
masked, labels = collator.torch_mask_tokens(big.clone())
special = torch.isin(big, torch.tensor(tokenizer.all_special_ids))
chosen = labels != -100
report("collator", masked.dtype == torch.int64, labels.dtype == torch.int64, bool((labels[chosen] == big[chosen]).all()),
       bool((~chosen | ~special).all()), bool((masked[~chosen] == big[~chosen]).all()),
       abs(chosen.sum().item() / (~special).sum().item() - 0.15) < 0.02,
       abs((masked[chosen] == 4).float().mean().item() - 0.8) < 0.05)


class Batch(nn.Module):
    """The masked batch as buffers, so both runs train on the torch run's draws."""

    def __init__(self, **tensors):
        super().__init__()
        for k, v in tensors.items():
            self.register_buffer(k, v)


batches = []
for step in range(4):
    rows = encoded["input_ids"][torch.tensor([(2 * step) % 8, (2 * step + 1) % 8, (2 * step + 3) % 8])]
    inputs, labels = collator.torch_mask_tokens(rows.clone())
    holder = Batch(input_ids=inputs, labels=labels)
    share_init(holder, f"batch{step}")
    idx = torch.tensor([(2 * step) % 8, (2 * step + 1) % 8, (2 * step + 3) % 8])
    batches.append({"input_ids": holder.input_ids, "labels": holder.labels,
                    "attention_mask": encoded["attention_mask"][idx],
                    "token_type_ids": encoded["token_type_ids"][idx]})

torch.manual_seed(42)
model = BertForMaskedLM(config)
emb = model.bert.embeddings.word_embeddings.weight
report("init", model.cls.predictions.decoder.weight is emb, emb[0].abs().sum().item(),
       abs(emb[1:].std().item() - 0.02) < 0.003, model.cls.predictions.decoder.bias is model.cls.predictions.bias,
       sorted(k for k in model.state_dict() if "position_ids" in k or "token_type_ids" in k),
       sorted(n for n, _ in model.named_buffers()), len(list(model.parameters())))
share_init(model)


def _get_linear_schedule_with_warmup_lr_lambda(current_step: int, *, num_warmup_steps: int, num_training_steps: int):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, last_epoch=-1):
    lr_lambda = partial(
        _get_linear_schedule_with_warmup_lr_lambda,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
    )
    return LambdaLR(optimizer, lr_lambda, last_epoch)


no_decay = ["bias", "LayerNorm.weight"]
optimizer_grouped_parameters = [
    {
        "params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
        "weight_decay": 0.01,
    },
    {
        "params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
        "weight_decay": 0.0,
    },
]
optimizer = torch.optim.AdamW(optimizer_grouped_parameters, lr=1e-3, betas=(0.9, 0.999), eps=1e-6)
gradient_accumulation_steps = 2
num_update_steps = len(batches) // gradient_accumulation_steps
lr_scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=1, num_training_steps=num_update_steps + 1)

model.train()
completed_steps = 0
for step, batch in enumerate(batches):
    outputs = model(**batch, output_attentions=True)
    loss = outputs[0]
    loss = loss / gradient_accumulation_steps
    loss.backward()
    report("step", step, loss.item(), emb.grad.norm().item(), model.cls.predictions.bias.grad.abs().sum().item(),
           model.bert.embeddings.token_type_embeddings.weight.grad.norm().item())
    if step % gradient_accumulation_steps == gradient_accumulation_steps - 1 or step == len(batches) - 1:
        total_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad()
        completed_steps += 1
        report("update", completed_steps, total_norm.item(), lr_scheduler.get_last_lr(), emb[5].tolist()[:4],
               model.cls.predictions.decoder.weight[5, :4].tolist())

model.eval()
with torch.no_grad():
    loss, scores, attentions = model(**batches[0], output_attentions=True)
    mask_rows = encoded["attention_mask"][torch.tensor([0, 1, 3])]
    report("eval", loss.item(), list(scores.shape), len(attentions), list(attentions[0].shape),
           attentions[0][0][..., mask_rows[0] == 0].abs().max().item(), attentions[0][0].sum(-1).mean().item(),
           scores[batches[0]["labels"] != -100].argmax(-1).tolist(),
           torch.finfo(torch.float32).min, torch.finfo(torch.float16).min)
